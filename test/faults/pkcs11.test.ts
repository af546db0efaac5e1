/**
 * pkcs11 fault cases on a real SoftHSM token, each with a clear error: a wrong PIN (the error names
 * the PIN file, never the PIN), a missing key label, a wrong module path, the token removed while
 * serving (and coming back), and a PIN file that changes (good and bad new PIN, counted in
 * kms_plugin_credential_reloads_total).
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { pkcs11Schema, type Pkcs11ConfigInput } from '../../src/config/providers/pkcs11.js';
import { createProvider } from '../../src/kek/pkcs11/index.js';
import type { Pkcs11Provider } from '../../src/kek/pkcs11/provider.js';
import { Metrics } from '../../src/observability/metrics.js';
import { captureLogger } from '../fakes/vault-transit/harness.js';
import { runCli } from '../support/plugin-process.js';
import { SOFTHSM_MODULE, SoftHsm, describeSoftHsm, onToken } from '../support/softhsm.js';

const sig = (ms = 10_000): AbortSignal => AbortSignal.timeout(ms);

describeSoftHsm('pkcs11 faults on SoftHSM', () => {
  let hsm: SoftHsm;
  let token: { label: string; pin: string; pinFile: string };
  const logs = captureLogger();
  const metrics = new Metrics({ processMetrics: false });
  const providers: Pkcs11Provider[] = [];
  const provider = async (over: Partial<Pkcs11ConfigInput> = {}): Promise<Pkcs11Provider> => {
    const cfg = pkcs11Schema.parse({
      modulePath: SOFTHSM_MODULE,
      tokenLabel: token.label,
      pinFile: token.pinFile,
      keyLabel: 'kek',
      ...over,
    });
    const p = (await createProvider(
      cfg,
      { logger: logs.logger, metrics, role: 'primary' },
      { retry: { maxAttempts: 2, baseBackoffMs: 5 }, breaker: { failureThreshold: 0 } },
    )) as Pkcs11Provider;
    providers.push(p);
    return p;
  };
  const reloads = async (outcome: string): Promise<number> => {
    const m = (await metrics.registry.getMetricsAsJSON()).find(
      (x) => x.name === 'kms_plugin_credential_reloads_total',
    );
    return m?.values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
  };
  /** Closes every session of the token in this process: the provider's next call must reopen. */
  const dropSessions = (): Promise<void> =>
    onToken(token.label, token.pin, (m, _s, slot) => m.lib.C_CloseAllSessions(slot));
  /** C_SetPIN through this process's module (SoftHSM caches the token state per process). */
  const setPin = (from: string, to: string): Promise<void> =>
    onToken(token.label, from, (m, s) => m.lib.C_SetPIN(s, from, to));

  beforeAll(async () => {
    hsm = await new SoftHsm().activate();
    token = hsm.initToken('kms-faults', '11223344');
    hsm.aesKey(token.label, token.pin, 'kek', 1);
  });
  afterAll(async () => {
    for (const p of providers) await p.close();
    hsm.cleanup();
  });

  test('wrong PIN: permission denied naming the PIN file, never the PIN; not retried until the file changes', async () => {
    const wrong = `${hsm.dir}/wrong-pin`;
    writeFileSync(wrong, 'wr0ng-PIN-x7q\n', { mode: 0o600 });
    const p = await provider({ pinFile: wrong });
    const err = (await p.currentVersion(sig()).catch((e: unknown) => e)) as Error & { kind: string };
    expect(err.kind).toBe('permission_denied');
    expect(err.message).toContain(wrong);
    expect(err.message).toContain('CKR_PIN_INCORRECT');
    expect(err.message).not.toContain('wr0ng-PIN-x7q');
    const again = (await p.currentVersion(sig()).catch((e: unknown) => e)) as Error;
    expect(again.message).toContain('does not try the same file again');
    // the CLI says the same, with a non-zero exit
    const r = await runCli(
      [
        ...['rotate', '--provider', 'pkcs11', '--pkcs11-module', SOFTHSM_MODULE],
        ...['--pkcs11-token-label', token.label, '--pkcs11-pin-file', wrong, '--pkcs11-key-label', 'kek'],
      ],
      hsm.env,
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(wrong);
    expect(r.stderr).not.toContain('wr0ng-PIN-x7q');
  });

  test('missing key label: unknown key, naming the label and how to create it', async () => {
    const p = await provider({ keyLabel: 'no-such-kek' });
    await expect(p.currentVersion(sig())).rejects.toMatchObject({
      kind: 'unknown_key',
      message: expect.stringContaining('no key labelled "no-such-kek" on token "kms-faults"'),
    });
    await expect(p.currentVersion(sig())).rejects.toThrow(/rotate --provider pkcs11/);
  });

  test('wrong module path or token label: clear errors naming the setting', async () => {
    await expect(provider({ modulePath: '/usr/lib/no-such-pkcs11.so' })).rejects.toMatchObject({
      kind: 'invalid_input',
      message: expect.stringMatching(
        /cannot load the PKCS#11 module \/usr\/lib\/no-such-pkcs11\.so.*--pkcs11-module/,
      ),
    });
    const p = await provider({ tokenLabel: 'absent-token' });
    await expect(p.currentVersion(sig())).rejects.toMatchObject({
      kind: 'unavailable',
      message: expect.stringContaining('no token labelled "absent-token"'),
    });
    await expect(provider({ pinFile: `${hsm.dir}/missing-pin` })).rejects.toThrow(
      /cannot read the PIN file .*missing-pin \(ENOENT\)/,
    );
  });

  test('token removed while serving: unavailable with a clear error, then back to work when it returns', async () => {
    const p = await provider();
    const v = await p.currentVersion(sig());
    const dek = randomBytes(32);
    const w = await p.wrap(dek, v, sig());
    const [dir] = hsm.tokenDirs();
    const away = `${hsm.dir}/token-away`; // outside the token directory: SoftHSM scans all of it
    renameSync(dir, away);
    try {
      const st = await p.currentVersion(sig());
      expect(st.state).toBe('unavailable');
      expect(st.detail).toMatch(/token is not answering/);
      const err = (await p.unwrap(w.wrapped, w.ref, sig()).catch((e: unknown) => e)) as Error & {
        kind: string;
      };
      expect(['unavailable', 'unknown_key']).toContain(err.kind);
      expect(err.message).toMatch(/kms-faults/);
    } finally {
      renameSync(away, dir);
    }
    let back;
    for (let i = 0; i < 20; i += 1) {
      back = await p.currentVersion(sig()).catch(() => undefined);
      if (back?.state === 'enabled') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(back?.state).toBe('enabled');
    expect(await p.unwrap(w.wrapped, w.ref, sig())).toEqual(dek);
  });

  test('PIN file changes: a rejected new PIN is logged and counted, the old PIN kept; a good one is adopted', async () => {
    const pinFile = `${hsm.dir}/rotating-pin`;
    writeFileSync(pinFile, `${token.pin}\n`, { mode: 0o600 });
    const p = await provider({ pinFile });
    const v = await p.currentVersion(sig());
    const w = await p.wrap(randomBytes(32), v, sig());

    writeFileSync(pinFile, 'bad-new-pin-0000\n');
    await dropSessions();
    const before = await reloads('error');
    const after = await p.currentVersion(sig());
    expect(after.detail).toBeUndefined();
    expect(after.state).toBe('enabled');
    expect(await reloads('error')).toBe(before + 1);
    const rec = logs.records().find((r) => String(r.msg).includes('rejects the new PIN'));
    expect(rec).toMatchObject({ level: 'error', pinFile });

    await setPin(token.pin, '55667788');
    writeFileSync(pinFile, '55667788\n');
    await dropSessions();
    const ok = await reloads('ok');
    await expect(p.unwrap(w.wrapped, w.ref, sig())).resolves.toHaveLength(32);
    expect(await reloads('ok')).toBe(ok + 1);
    await setPin('55667788', token.pin);

    const all = logs.lines.join('\n') + (await metrics.registry.metrics());
    for (const secret of [token.pin, '55667788', 'bad-new-pin-0000', 'wr0ng-PIN-x7q'])
      expect(all).not.toContain(secret);
  });
});
