/**
 * Vault over TLS with a custom CA (certificates made with openssl in the test), server name
 * override, and TLS certificate auth with mutual TLS.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { VaultHarness, deadlineIn } from '../fakes/vault-transit/harness.js';
import { createTestPki, type TestPki } from '../support/test-pki.js';

const sig = (): AbortSignal => deadlineIn(3000);
let pki: TestPki;
let otherCa: TestPki;
const pem = (name: string): string =>
  name.startsWith('other.') ? otherCa.file(name.replace('other.', 'ca.')) : pki.file(name);

beforeAll(() => {
  pki = createTestPki({ caName: 'test vault CA', extraDns: ['vault.test'], clientCn: 'kms-plugin' });
  otherCa = createTestPki({ caName: 'other CA' }); // a second, unrelated CA
});

afterAll(() => {
  pki.remove();
  otherCa.remove();
});

describe('vault over TLS', () => {
  let h: VaultHarness;

  afterEach(async () => {
    await h.close();
  });

  const start = async (clientCa = false): Promise<void> => {
    h = await new VaultHarness({
      tls: {
        cert: readFileSync(pem('server.crt')),
        key: readFileSync(pem('server.key')),
        clientCa: clientCa ? readFileSync(pem('ca.crt')) : undefined,
      },
    }).start();
    h.fake.createKey('kek');
  };

  const roundTrip = async (p: Awaited<ReturnType<VaultHarness['provider']>>): Promise<void> => {
    const v = await p.currentVersion(sig());
    const dek = randomBytes(32);
    const w = await p.wrap(dek, v, sig());
    expect(await p.unwrap(w.wrapped, w.ref, sig())).toEqual(dek);
  };

  test('custom CA file: round trip over https', async () => {
    await start();
    expect(h.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const p = await h.provider({ caFile: pem('ca.crt') });
    await roundTrip(p);
  });

  test('without the CA, or with the wrong one: a TLS error that names the fix, not retried', async () => {
    await start();
    const p = await h.provider({ caFile: pem('other.crt') });
    const err = (await p.currentVersion(sig()).catch((e: unknown) => e)) as Error & {
      kind: string;
      retryable: boolean;
    };
    expect(err.kind).toBe('unavailable');
    expect(err.message).toMatch(/TLS handshake with Vault failed .*vault\.caFile/);
    expect(err.retryable).toBe(false);
    expect(h.fake.requests).toHaveLength(0);
  });

  test('server name override: the certificate is checked against tls.serverName', async () => {
    await start();
    const ok = await h.provider({ caFile: pem('ca.crt'), tls: { serverName: 'vault.test' } });
    await roundTrip(ok);
    const wrong = await h.provider({ caFile: pem('ca.crt'), tls: { serverName: 'elsewhere.test' } });
    await expect(wrong.currentVersion(sig())).rejects.toMatchObject({
      kind: 'unavailable',
      message: expect.stringMatching(/ERR_TLS_CERT_ALTNAME_INVALID/),
    });
  });

  test('cert auth: mutual TLS login with the client certificate', async () => {
    await start(true);
    h.fake.addCertRole('kms-plugin', { ttlSeconds: 600 });
    const p = await h.provider({
      caFile: pem('ca.crt'),
      tls: { certFile: pem('client.crt'), keyFile: pem('client.key') },
      auth: { method: 'cert', role: 'kms-plugin' },
    });
    await roundTrip(p);
    const login = h.fake.requests.find((r) => r.path === 'auth/cert/login');
    expect(login).toMatchObject({ body: { name: 'kms-plugin' }, clientCert: true, status: 200 });
    expect(
      h.fake.requests
        .filter((r) => r.path.startsWith('transit/'))
        .every((r) => r.clientCert && r.token === h.fake.issuedTokens()[0]),
    ).toBe(true);
  });

  test('cert auth without a client certificate is refused as permission_denied', async () => {
    await start(true);
    h.fake.addCertRole('kms-plugin');
    // The config requires a certificate for cert auth, so present one the server does not trust.
    const p = await h.provider({
      caFile: pem('ca.crt'),
      tls: { certFile: pem('other.crt'), keyFile: pem('other.key') },
      auth: { method: 'cert' },
    });
    await expect(p.currentVersion(sig())).rejects.toMatchObject({ kind: 'permission_denied' });
  });
});
