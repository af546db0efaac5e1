/**
 * The whole plugin (startPlugin: server, envelope, watcher) in this process with the Vault
 * provider and the fake: a sealed Vault shows in Status' healthz while cached DEKs keep
 * working, an expired token mid-run is invisible to the apiserver, and deletion_allowed stops
 * writes.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { startPlugin, type PluginHandle } from '../../src/app/plugin.js';
import { KmsClient } from '../../src/server/client.js';
import { Metrics } from '../../src/observability/metrics.js';
import { VaultHarness } from '../fakes/vault-transit/harness.js';

const until = async (what: string, check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe('plugin with the vault provider', () => {
  let h: VaultHarness;
  let plugin: PluginHandle;
  let client: KmsClient;
  const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJrbXMifQ.c2ln';

  beforeEach(async () => {
    h = await new VaultHarness().start();
    h.fake.createKey('kek');
    h.fake.addKubernetesRole('kms-plugin', jwt, { ttlSeconds: 3600 });
    const endpoint = `unix://${join(h.dir, 'kms.sock')}`;
    const config = loadConfig({
      env: {},
      flags: {
        provider: 'vault',
        'vault-address': h.url,
        'vault-key-name': 'kek',
        'vault-auth-method': 'kubernetes',
        'vault-auth-role': 'kms-plugin',
        'vault-jwt-file': h.file('jwt', jwt),
        listen: endpoint,
        'health-addr': '',
        'probe-interval': '150ms',
      },
    });
    plugin = await startPlugin(config, {
      logger: h.logs.logger,
      metrics: new Metrics({ processMetrics: false }),
    });
    client = new KmsClient(endpoint);
    await until('Status ok', async () => (await client.status().catch(() => undefined))?.healthz === 'ok');
  });

  afterEach(async () => {
    client.close();
    await plugin.close();
    await h.close();
  });

  const encrypt = (seed: Buffer) => client.encrypt({ plaintext: seed, uid: randomUUID() });

  test('sealed: Status stays up and says so, cached DEKs keep working; unseal recovers', async () => {
    const seed = randomBytes(32);
    const enc = await encrypt(seed);
    h.fake.sealed = true;
    await until('healthz reports the seal', async () =>
      (await client.status()).healthz.includes('Vault is sealed'),
    );
    const dec = await client.decrypt({
      ciphertext: enc.ciphertext,
      key_id: enc.key_id,
      annotations: enc.annotations,
      uid: randomUUID(),
    });
    expect(dec.plaintext).toEqual(seed);
    expect((await encrypt(randomBytes(32))).key_id).toBe(enc.key_id);
    h.fake.sealed = false;
    await until('healthz ok again', async () => (await client.status()).healthz === 'ok');
  });

  test('token expiry mid-run: a cold Decrypt logs in again transparently', async () => {
    const seed = randomBytes(32);
    const enc = await encrypt(seed);
    // A second replica (empty DEK cache) that logged in, then its token expires before the Decrypt.
    const fresh = await startPlugin(
      loadConfig({
        env: {},
        flags: {
          provider: 'vault',
          'vault-address': h.url,
          'vault-key-name': 'kek',
          'vault-auth-method': 'kubernetes',
          'vault-auth-role': 'kms-plugin',
          'vault-jwt-file': h.file('jwt2', jwt),
          listen: `unix://${join(h.dir, 'kms2.sock')}`,
          'health-addr': '',
        },
      }),
      { logger: h.logs.logger, metrics: new Metrics({ processMetrics: false }), waitForPrimeMs: 5000 },
    );
    const c2 = new KmsClient(`unix://${join(h.dir, 'kms2.sock')}`);
    const loginsBefore = h.fake.count('auth/kubernetes/login');
    try {
      h.fake.expireAllTokens();
      const dec = await c2.decrypt({
        ciphertext: enc.ciphertext,
        key_id: enc.key_id,
        annotations: enc.annotations,
        uid: randomUUID(),
      });
      expect(dec.plaintext).toEqual(seed);
      const decrypts = h.fake.requests.filter((r) => r.path === 'transit/decrypt/kek').map((r) => r.status);
      expect(decrypts).toEqual([403, 200]);
    } finally {
      c2.close();
      await fresh.close();
    }
    // The first plugin's token expired too: its next KEK probe logs in again (the second login
    // after the expiry; the other is the replica's) without a visible error.
    await until(
      'the first plugin logs in again',
      async () => h.fake.count('auth/kubernetes/login') >= loginsBefore + 2,
    );
    expect((await client.status()).healthz).toBe('ok');
  });

  test('deletion_allowed on the key stops writes (Status error)', async () => {
    h.fake.configureKey('kek', { deletionAllowed: true });
    await until('Status fails', async () =>
      client.status().then(
        () => false,
        () => true,
      ),
    );
    const err = (await client.status().catch((e: unknown) => e)) as { details?: string };
    expect(err.details).toMatch(/deletion/);
  });
});
