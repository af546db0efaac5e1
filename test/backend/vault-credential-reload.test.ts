/**
 * Vault credential files rotated mid-run, without a restart: the token file, the AppRole
 * secret-id and the TLS client certificate. A changed file is used from the next call; a bad new
 * file is logged, counted (kms_plugin_credential_reloads_total) and the old credential kept.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { VaultHarness, deadlineIn } from '../fakes/vault-transit/harness.js';
import { createTestPki, type TestPki } from '../support/test-pki.js';

const sig = (): AbortSignal => deadlineIn(3000);

const roundTrip = async (p: Awaited<ReturnType<VaultHarness['provider']>>): Promise<void> => {
  const v = await p.currentVersion(sig());
  const dek = randomBytes(32);
  const w = await p.wrap(dek, v, sig());
  expect(await p.unwrap(w.wrapped, w.ref, sig())).toEqual(dek);
};

const reloads = (h: VaultHarness, outcome: string): Promise<number | undefined> =>
  h.metric('kms_plugin_credential_reloads_total', { provider: 'vault', outcome });

describe('vault credential files rotate underneath', () => {
  let h: VaultHarness;
  afterEach(async () => {
    await h.close();
  });

  test('token file: the next call uses the new token; a bad new file keeps the old one', async () => {
    h = await new VaultHarness().start();
    h.fake.createKey('kek');
    const a = h.fake.issueToken({ ttlSeconds: 0 });
    const b = h.fake.issueToken({ ttlSeconds: 0 });
    const file = h.file('token', a);
    const p = await h.provider({ auth: { method: 'token', tokenFile: file } });
    await roundTrip(p);
    writeFileSync(file, `${b}\n`);
    await roundTrip(p); // no wait: the very next call
    const tokens = () => h.fake.requests.filter((r) => r.path.startsWith('transit/')).map((r) => r.token);
    expect(tokens()).toEqual([a, a, a, b, b, b]);
    expect(await reloads(h, 'ok')).toBe(1);

    writeFileSync(file, 'two tokens\n');
    await roundTrip(p);
    expect(tokens().slice(6)).toEqual([b, b, b]);
    expect(await reloads(h, 'error')).toBe(1);
    const warn = h.logs.records().find((r) => r.field === 'vault.auth.tokenFile' && r.level === 'warn');
    expect(warn?.msg).toMatch(/keeping the credential already loaded/);
    expect(h.logs.lines.join('\n')).not.toContain(b);
  });

  test('AppRole secret-id: a rotated secret-id is used at the next login; a bad one keeps the old', async () => {
    h = await new VaultHarness().start();
    h.fake.createKey('kek');
    h.fake.addAppRole('role-1', 'secret-one', { ttlSeconds: 3600 });
    const secretFile = h.file('secret-id', 'secret-one');
    const p = await h.provider(
      { auth: { method: 'approle', roleIdFile: h.file('role-id', 'role-1'), secretIdFile: secretFile } },
      { auth: { forcedLoginIntervalMs: 0 } },
    );
    await roundTrip(p);
    // The operator issues a new secret-id and revokes the old one.
    h.fake.addAppRole('role-1', 'secret-two', { ttlSeconds: 3600 });
    writeFileSync(secretFile, 'secret-two\n');
    await roundTrip(p); // picked up (read and checked) at this call
    expect(await reloads(h, 'ok')).toBe(1);
    h.fake.expireAllTokens();
    await roundTrip(p); // 403 → login with the new secret-id
    const logins = h.fake.requests.filter((r) => r.path === 'auth/approle/login');
    expect(logins.map((r) => (r.body as { secret_id: string }).secret_id)).toEqual([
      'secret-one',
      'secret-two',
    ]);

    writeFileSync(secretFile, '');
    await roundTrip(p);
    expect(await reloads(h, 'error')).toBe(1);
    h.fake.expireAllTokens();
    await roundTrip(p); // the empty file is ignored: login with the kept secret-id
    const last = h.fake.requests.filter((r) => r.path === 'auth/approle/login').pop();
    expect(last?.body).toMatchObject({ secret_id: 'secret-two' });
    expect(last?.status).toBe(200);
    expect(h.logs.lines.join('\n')).not.toContain('secret-two');
  });

  describe('TLS client certificate', () => {
    let pki: TestPki;
    let other: TestPki;
    beforeAll(() => {
      pki = createTestPki({ caName: 'reload CA', clientCn: 'kms-plugin' });
      other = createTestPki({ caName: 'untrusted CA', clientCn: 'kms-plugin' });
    });
    afterAll(() => {
      pki.remove();
      other.remove();
    });

    test('a replaced certificate + key pair is presented from the next call; a broken one is ignored', async () => {
      h = await new VaultHarness({
        tls: {
          cert: readFileSync(pki.file('server.crt')),
          key: readFileSync(pki.file('server.key')),
          clientCa: readFileSync(pki.file('ca.crt')),
        },
      }).start();
      h.fake.createKey('kek');
      h.fake.addCertRole('kms-plugin', { ttlSeconds: 600 });
      // Start with a certificate the server does not trust.
      const certFile = h.file('client.crt', readFileSync(other.file('client.crt')));
      const keyFile = h.file('client.key', readFileSync(other.file('client.key')));
      const p = await h.provider(
        {
          caFile: pki.file('ca.crt'),
          tls: { certFile, keyFile },
          auth: { method: 'cert', role: 'kms-plugin' },
        },
        { auth: { forcedLoginIntervalMs: 0 } },
      );
      await expect(p.currentVersion(sig())).rejects.toMatchObject({ kind: 'permission_denied' });
      // cert-manager renews: key first, then certificate (a half-rotated pair is not used).
      copyFileSync(pki.file('client.key'), keyFile);
      copyFileSync(pki.file('client.crt'), certFile);
      await roundTrip(p);
      expect(h.fake.requests.filter((r) => r.path === 'auth/cert/login').pop()).toMatchObject({
        status: 200,
        clientCert: true,
      });
      expect(await reloads(h, 'ok')).toBe(2);

      writeFileSync(certFile, 'not a certificate');
      h.fake.expireAllTokens();
      await roundTrip(p); // re-login over the kept (good) certificate
      expect(await reloads(h, 'error')).toBe(1);
    });
  });
});
