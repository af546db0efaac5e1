/**
 * Vault faults: sealed, standby, unreachable, throttled, 5xx, hangs and dropped connections,
 * within and past the caller's deadline.
 */
import { randomBytes } from 'node:crypto';
import { CircuitOpenError } from '../../src/errors.js';
import { keyStateOf } from '../../src/kek/key-state.js';
import type { KeyVersionInfo } from '../../src/kek/types.js';
import type { VaultProvider } from '../../src/kek/vault/provider.js';
import { VaultHarness, deadlineIn, useVaultHarness } from '../fakes/vault-transit/harness.js';
import { FakeVault } from '../fakes/vault-transit/server.js';

const sig = (ms = 3000): AbortSignal => deadlineIn(ms);
// When the last attempt is cut at the caller's deadline, RemoteCaller reports `deadline`, or
// `unavailable` ("no answer within") if the attempt's timer fires a millisecond before the
// caller's. Either way the call ends on time; that is what these tests pin down.
const pastDeadline = expect.stringMatching(/^(deadline|unavailable)$/);

describe('vault faults', () => {
  let h: VaultHarness;

  useVaultHarness((started) => (h = started));

  test('sealed: loud, unavailable state and metric, calls fail unavailable; unsealing recovers', async () => {
    const p = await h.provider({}, { breaker: { cooldownMs: 100 } });
    const v = await h.probe(p, sig());
    const w = await p.wrap(randomBytes(32), v, sig());
    h.fake.sealed = true;
    const sealed = await h.probe(p, sig());
    expect(sealed).toMatchObject({ state: 'unavailable', detail: 'Vault is sealed', ref: v.ref });
    expect(
      await h.metric('kms_plugin_kek_state', { provider: 'vault', role: 'primary', state: 'unavailable' }),
    ).toBe(1);
    expect(
      await h.metric('kms_plugin_kek_state', { provider: 'vault', role: 'primary', state: 'enabled' }),
    ).toBe(0);
    // The one key-state policy: unavailable (not a stop-writes state) is a warning, as in the watcher.
    const loud = h.logs.records().find((r) => r.level === 'warn' && r.state === 'unavailable');
    expect(loud).toMatchObject({
      detail: 'Vault is sealed',
      role: 'primary',
      kek: `vault:${v.ref.key}@${v.ref.version}`,
    });
    await expect(p.wrap(randomBytes(32), v, sig())).rejects.toMatchObject({
      kind: 'unavailable',
      message: expect.stringMatching(/sealed/),
    });
    await expect(p.unwrap(w.wrapped, w.ref, sig())).rejects.toMatchObject({ kind: 'unavailable' });
    h.fake.sealed = false;
    await new Promise((r) => setTimeout(r, 150));
    expect((await h.probe(p, sig())).state).toBe('enabled');
    expect(
      await h.metric('kms_plugin_kek_state', { provider: 'vault', role: 'primary', state: 'enabled' }),
    ).toBe(1);
  });

  test('sealed before the first probe: unavailable error and metric', async () => {
    h.fake.sealed = true;
    const p = await h.provider();
    const err = await p.currentVersion(sig(1000)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ kind: 'unavailable' });
    // No version known yet: the error carries the state, and the owner reports it (as the watcher does).
    expect(keyStateOf(err)).toBe('unavailable');
    h.keyState.report({ ref: { provider: 'vault', key: p.key, version: '?' }, state: keyStateOf(err)! });
    expect(await h.metric('kms_plugin_kek_state', { provider: 'vault', state: 'unavailable' })).toBe(1);
  });

  test('standby that cannot forward: unavailable with advice', async () => {
    const p = await h.provider();
    const v = await p.currentVersion(sig());
    h.fake.standby = true;
    await expect(p.wrap(randomBytes(32), v, sig())).rejects.toMatchObject({
      kind: 'unavailable',
      message: expect.stringMatching(/standby/),
    });
    const s = await p.currentVersion(sig());
    expect(s.state).toBe('unavailable');
    expect(s.detail).toMatch(/standby/);
  });

  test('unreachable: unavailable fast; with a known version the state turns unavailable', async () => {
    const p = await h.provider();
    const v = await p.currentVersion(sig());
    await h.fake.close();
    const started = Date.now();
    const err = (await p.wrap(randomBytes(32), v, sig()).catch((e: unknown) => e)) as Error & {
      kind: string;
    };
    expect(err.kind).toBe('unavailable');
    expect(err.message).toMatch(/cannot reach Vault/);
    expect(Date.now() - started).toBeLessThan(2000);
    const s = await p.currentVersion(sig());
    expect(s).toMatchObject({ state: 'unavailable', detail: 'Vault is unreachable' });
  });

  test('429 within the deadline: retried and succeeds; retries counted', async () => {
    const p = await h.provider();
    const v = await p.currentVersion(sig());
    h.fake.faults.push(
      { match: 'encrypt', status: 429, errors: ['rate limit quota exceeded'] },
      { match: 'encrypt', status: 429, errors: ['rate limit quota exceeded'] },
    );
    const w = await p.wrap(randomBytes(32), v, sig());
    expect(w.wrapped.toString()).toMatch(/^vault:v1:/);
    expect(h.fake.count('transit/encrypt/kek')).toBe(3);
    expect(
      await h.metric('kms_plugin_remote_retries_total', { provider: 'vault', operation: 'encrypt' }),
    ).toBe(2);
  });

  /** A provider that knows its version, and one rate-limited encrypt carrying `Retry-After`. */
  async function rateLimited(retryAfter: string): Promise<[VaultProvider, KeyVersionInfo]> {
    const p = await h.provider();
    const v = await p.currentVersion(sig());
    const headers = { 'retry-after': retryAfter };
    h.fake.faults.push({ match: 'encrypt', status: 429, errors: ['rate limit quota exceeded'], headers });
    return [p, v];
  }

  test('429 with a Retry-After that fits: waited out, then retried (issue 14: RemoteCaller reads it for Vault too)', async () => {
    const [p, v] = await rateLimited('1');
    const started = Date.now();
    const w = await p.wrap(randomBytes(32), v, sig(3000));
    expect(Date.now() - started).toBeGreaterThanOrEqual(950); // the back-off alone would be ~50 ms
    expect(w.wrapped.toString()).toMatch(/^vault:v1:/);
    expect(h.fake.count('transit/encrypt/kek')).toBe(2);
  });

  test('429 with a Retry-After past the deadline: throttled at once, naming the wait', async () => {
    const [p, v] = await rateLimited('5');
    const started = Date.now();
    const err = (await p.wrap(randomBytes(32), v, sig(2000)).catch((e: unknown) => e)) as Error & {
      kind: string;
    };
    expect(err.kind).toBe('throttled');
    expect(err.message).toMatch(
      /^vault encrypt \S*kek: Vault rate limit reached.*Retry-After 5 s does not fit/,
    );
    expect(Date.now() - started).toBeLessThan(1500);
    expect(h.fake.count('transit/encrypt/kek')).toBe(1);
  });

  test('persistent 5xx: bounded attempts, then unavailable', async () => {
    const p = await h.provider();
    const v = await p.currentVersion(sig());
    for (let i = 0; i < 10; i += 1)
      h.fake.faults.push({ match: 'encrypt', status: 500, errors: ['internal error'] });
    await expect(p.wrap(randomBytes(32), v, sig())).rejects.toMatchObject({ kind: 'unavailable' });
    expect(h.fake.count('transit/encrypt/kek')).toBe(4);
  });

  test('a hang within the deadline: the attempt is cut and the retry succeeds', async () => {
    const p = await h.provider({}, { retry: { attemptTimeoutMs: 200 } });
    const v = await p.currentVersion(sig());
    h.fake.faults.push({ match: 'decrypt', hang: true });
    const dek = randomBytes(32);
    const w = await p.wrap(dek, v, sig());
    const started = Date.now();
    expect(await p.unwrap(w.wrapped, w.ref, sig(2000))).toEqual(dek);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(h.fake.count('transit/decrypt/kek')).toBe(2);
  });

  test('a hang past the deadline: deadline error on time, never late', async () => {
    const p = await h.provider();
    const v = await p.currentVersion(sig());
    h.fake.faults.push({ match: 'encrypt', hang: true });
    const started = Date.now();
    await expect(p.wrap(randomBytes(32), v, sig(300))).rejects.toMatchObject({ kind: pastDeadline });
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(600);
  });

  test('a dropped connection is retried', async () => {
    const p = await h.provider();
    const v = await p.currentVersion(sig());
    h.fake.faults.push({ match: 'encrypt', drop: true });
    await expect(p.wrap(randomBytes(32), v, sig())).resolves.toBeDefined();
    expect(h.fake.count('transit/encrypt/kek')).toBe(2);
  });

  test('latency past the deadline on every call: deadline, and calls stop at the deadline', async () => {
    const p = await h.provider();
    const v = await p.currentVersion(sig());
    h.fake.latencyMs = 1000;
    const started = Date.now();
    await expect(p.wrap(randomBytes(32), v, sig(400))).rejects.toMatchObject({ kind: pastDeadline });
    expect(h.fake.count('transit/encrypt/kek')).toBe(1);
    expect(Date.now() - started).toBeLessThan(700);
  });

  test('permission revoked by policy: permission_denied, not retried', async () => {
    const p = await h.provider();
    const v = await p.currentVersion(sig());
    const w = await p.wrap(randomBytes(32), v, sig());
    h.fake.faults.push({
      match: 'decrypt',
      status: 403,
      errors: ['1 error occurred:\n\t* permission denied\n\n'],
    });
    await expect(p.unwrap(w.wrapped, w.ref, sig())).rejects.toMatchObject({ kind: 'permission_denied' });
    expect(h.fake.count('transit/decrypt/kek')).toBe(1);
  });

  test('the circuit opens after repeated outages and fails fast', async () => {
    const p = await h.provider({}, { breaker: { failureThreshold: 3, cooldownMs: 60_000 } });
    const v = await p.currentVersion(sig());
    h.fake.down = true;
    await expect(p.wrap(randomBytes(32), v, sig())).rejects.toMatchObject({ kind: 'unavailable' });
    const before = h.fake.requests.length;
    const started = Date.now();
    const fast = await p.wrap(randomBytes(32), v, sig()).catch((e: unknown) => e);
    expect(fast).toMatchObject({ message: expect.stringMatching(/circuit open/) });
    // Recognised by type, never by its text.
    expect(fast).toBeInstanceOf(CircuitOpenError);
    expect(Date.now() - started).toBeLessThan(50);
    expect(h.fake.requests.length).toBe(before);
  });
});

test('FakeVault standalone: sys/health reflects sealed and standby; sys/seal and sys/unseal', async () => {
  const fake = new FakeVault();
  const url = await fake.listen();
  try {
    expect((await fetch(`${url}/v1/sys/health`)).status).toBe(200);
    fake.sealed = true;
    const sealed = await fetch(`${url}/v1/sys/health`);
    expect(sealed.status).toBe(503);
    expect(await sealed.json()).toMatchObject({ sealed: true });
    fake.sealed = false;
    const seal = (what: string, token: string): Promise<Response> =>
      fetch(`${url}/v1/sys/${what}`, { method: 'PUT', headers: { 'x-vault-token': token } });
    expect((await seal('seal', 'not-root')).status).toBe(403);
    expect((await seal('seal', fake.rootToken)).status).toBe(200);
    expect(fake.sealed).toBe(true);
    expect(
      (await fetch(`${url}/v1/transit/keys/kek`, { headers: { 'x-vault-token': fake.rootToken } })).status,
    ).toBe(503);
    expect((await seal('unseal', fake.rootToken)).status).toBe(200);
    expect(fake.sealed).toBe(false);
    fake.standby = true;
    expect((await fetch(`${url}/v1/sys/health`)).status).toBe(429);
  } finally {
    await fake.close();
  }
});
