/**
 * The Key Vault fake itself, driven by the raw SDK: the bearer challenge, versionless paths
 * (`/keys/kek/` and `/keys/kek//wrapkey`), and the SDK behaviours that shaped the provider's design
 * (a versionless client reports a stale keyID after rotation, and cannot unwrap old data).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { request } from 'node:https';
import { CryptographyClient, KeyClient, type KeyVaultKey } from '@azure/keyvault-keys';
import { makeTestPki } from '../fakes/azure-keyvault/certs.js';
import { FakeKeyVault } from '../fakes/azure-keyvault/server.js';
import { StaticCredential } from '../fakes/azure-keyvault/harness.js';

const pki = makeTestPki();
const vault = new FakeKeyVault({ pki });
const credential = new StaticCredential();
const opts = {
  tlsOptions: { ca: pki.ca },
  disableChallengeResourceVerification: true,
  retryOptions: { maxRetries: 0 },
};

beforeAll(async () => {
  await vault.listen();
});
afterAll(async () => {
  await vault.close();
});

describe('Key Vault fake', () => {
  it('answers the first request with the 401 bearer challenge, then serves the key', async () => {
    const v1 = vault.createKey('chal');
    const keys = new KeyClient(vault.url, credential, opts);
    const before = vault.seen.length;
    const key = await keys.getKey('chal');
    const seen = vault.seen.slice(before);
    expect(seen[0]).toMatchObject({ method: 'GET', path: '/keys/chal/', authorized: false, status: 401 });
    expect(seen[1]).toMatchObject({
      op: 'getKey',
      authorized: true,
      status: 200,
      version: '',
      usedVersion: v1,
    });
    expect(key.properties.version).toBe(v1);
    expect(key.keyType).toBe('RSA');
    expect(key.key?.n?.length).toBe(256);
    expect(key.properties.createdOn).toBeInstanceOf(Date);
    expect(credential.calls).toBeGreaterThanOrEqual(1);
  });

  it('rejects a token it does not accept with 401 (RestError), and a missing api-version with 400', async () => {
    vault.createKey('tok');
    const strict = new FakeKeyVault({ pki, acceptToken: (t) => t === 'the-right-token' });
    await strict.listen();
    try {
      strict.createKey('tok');
      const keys = new KeyClient(strict.url, new StaticCredential('a-wrong-token'), opts);
      await expect(keys.getKey('tok')).rejects.toMatchObject({ name: 'RestError', statusCode: 401 });
      const raw = (path: string, ca?: string) =>
        new Promise<number>((resolve, reject) => {
          const req = request(
            `${strict.url}${path}`,
            { ca, headers: { authorization: 'Bearer the-right-token' } },
            (res) => {
              res.resume();
              resolve(res.statusCode ?? 0);
            },
          );
          req.on('error', reject);
          req.end();
        });
      expect(await raw('/keys/tok/', pki.ca)).toBe(400); // no api-version
      expect(await raw('/keys/tok/?api-version=2025-07-01', pki.ca)).toBe(200);
      await expect(raw('/keys/tok/?api-version=2025-07-01')).rejects.toMatchObject({
        code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      });
    } finally {
      await strict.close();
    }
  });

  it('versionless SDK use: wraps with the latest via `//`, reports a stale keyID, cannot unwrap old data', async () => {
    const v1 = vault.createKey('vl');
    const keys = new KeyClient(vault.url, credential, opts);
    const versionless = new CryptographyClient(`${vault.url}/keys/vl`, credential, opts);
    const dek = randomBytes(32);
    const w1 = await versionless.wrapKey('RSA-OAEP-256', dek);
    expect(vault.seen.filter((s) => s.op === 'wrapKey' && s.status === 200).at(-1)).toMatchObject({
      path: '/keys/vl//wrapkey',
      version: '',
      usedVersion: v1,
    });

    const v2 = vault.rotateKey('vl');
    let kid: string | undefined;
    const w2 = await versionless.wrapKey('RSA-OAEP-256', randomBytes(32), {
      onResponse: (r) => {
        kid = (r.parsedBody as { kid?: string }).kid;
      },
    });
    expect(kid).toBe(`${vault.url}/keys/vl/${v2}`); // what the service used
    expect(w2.keyID).not.toContain(v2); // what the SDK reports
    await expect(versionless.unwrapKey('RSA-OAEP-256', w1.result)).rejects.toMatchObject({ statusCode: 400 });

    // The versioned path works, which is why the provider stores the version.
    const pinned = new CryptographyClient(
      {
        name: 'vl',
        id: `${vault.url}/keys/vl/${v1}`,
        properties: { name: 'vl', vaultUrl: vault.url, version: v1 },
      } as KeyVaultKey,
      credential,
      opts,
    );
    expect(Buffer.from((await pinned.unwrapKey('RSA-OAEP-256', w1.result)).result).equals(dek)).toBe(true);
    expect((await keys.getKey('vl')).properties.version).toBe(v2);
  });

  it('RSA-OAEP (SHA-1) is done locally by the SDK: the service never sees it', async () => {
    vault.createKey('local');
    const c = new CryptographyClient(`${vault.url}/keys/local`, credential, opts);
    const before = vault.count('wrapKey');
    await c.wrapKey('RSA-OAEP', randomBytes(32));
    expect(vault.count('wrapKey')).toBe(before);
  });
});
