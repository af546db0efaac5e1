/**
 * Rotation with remote providers, in process (startPlugin → real provider client → local fake KMS):
 * the watcher adopts a new remote version, old data stays readable, and (GCP, which implements
 * newestVersion()) a remote primary moved back to an older version is refused on the running
 * plugin and after a restart. AWS (new key material by rotate-key-on-demand) and Vault (transit
 * rotate), and a move from a local key file to Vault with `decryptOnly`.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { keygen } from '../../src/cli/keygen.js';
import { startPlugin, type PluginHandle } from '../../src/app/plugin.js';
import { validateConfig } from '../../src/config/load.js';
import { timeoutSignal } from '../../src/deadline.js';
import { createLogger } from '../../src/observability/logger.js';
import { FakeGcpKms } from '../fakes/gcp-kms/server.js';
import { TEST_KEY } from '../fakes/gcp-kms/harness.js';
import { FakeVault } from '../fakes/vault-transit/server.js';
import { FakeAwsKms } from '../fakes/aws-kms/fake.js';
import { STATIC_AWS_ENV, setEnv } from '../fakes/aws-kms/harness.js';
import { tempDir } from '../support/plugin-process.js';
import { sleep } from './rotation-support.js';

const handles: PluginHandle[] = [];
const fakes: Array<{ close(): Promise<unknown> }> = [];
const dir = tempDir('kkp-rp-');
afterAll(async () => {
  await Promise.allSettled(handles.map((h) => h.close()));
  await Promise.allSettled(fakes.map((f) => f.close()));
  dir.cleanup();
});

async function start(section: Record<string, unknown>): Promise<PluginHandle> {
  const config = validateConfig({
    listen: `unix:///@kkp-rp-${process.pid}-${handles.length}`,
    healthAddr: '',
    probe: { interval: '100ms', jitter: 0 },
    ...section,
  });
  const h = await startPlugin(config, { logger: createLogger({ level: 'silent' }), waitForPrimeMs: 10_000 });
  handles.push(h);
  return h;
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 8000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('rotation with the gcp provider (fake Cloud KMS)', () => {
  it('adopts a new primary, keeps old data readable, refuses a primary moved back (also after a restart)', async () => {
    const fake = await FakeGcpKms.start();
    fakes.push(fake);
    fake.createKey(TEST_KEY);
    const section = { provider: 'gcp', gcp: { keyName: TEST_KEY, endpoint: fake.endpoint, insecure: true } };
    const h = await start(section);
    const a = h.envelope.currentKeyId()!;
    const seed = randomBytes(32);
    const underA = h.envelope.encrypt(seed);

    fake.addVersion(TEST_KEY, { primary: true }); // version 2
    await waitFor(() => h.envelope.currentKeyId() !== a, 'the switch to version 2');
    const b = h.envelope.currentKeyId()!;
    expect(h.envelope.currentVersion()?.ref.version).toMatch(/2$/);
    expect(
      await h.envelope.decrypt(underA.ciphertext, underA.keyId, underA.annotations, timeoutSignal(3000)),
    ).toEqual(seed);

    fake.setPrimary(TEST_KEY, 1); // moved back
    await waitFor(() => h.watcher.snapshot().rollbackRefused !== undefined, 'the rollback refusal');
    await sleep(300);
    expect(h.envelope.currentKeyId()).toBe(b);
    await h.close();

    const restarted = await start(section);
    expect(restarted.envelope.currentKeyId()).toBe(b); // newest enabled version, not the primary
    expect(restarted.watcher.snapshot().rollbackRefused).toBeDefined();
    expect(
      await restarted.envelope.decrypt(
        underA.ciphertext,
        underA.keyId,
        underA.annotations,
        timeoutSignal(3000),
      ),
    ).toEqual(seed);
  });
});

describe('rotation with the vault provider (fake Transit), and a move from a local key file', () => {
  it('follows `transit/keys/<name>/rotate`, and reads data written under the old local KEK via decryptOnly', async () => {
    const fake = new FakeVault();
    const url = await fake.listen();
    fakes.push(fake);
    fake.createKey('kek');
    const tokenFile = join(dir.path, 'token');
    writeFileSync(tokenFile, `${fake.rootToken}\n`, { mode: 0o600 });
    const keyFile = join(dir.path, 'old-local.json');
    keygen(keyFile);

    // Data written while the cluster used the local key file.
    const local = await start({ provider: 'local', local: { keyFile } });
    const seedOld = randomBytes(32);
    const underLocal = local.envelope.encrypt(seedOld);
    await local.close();

    const h = await start({
      provider: 'vault',
      vault: { address: url, keyName: 'kek', auth: { method: 'token', tokenFile } },
      decryptOnly: [{ provider: 'local', local: { keyFile } }],
    });
    const v1 = h.envelope.currentKeyId()!;
    expect(v1).toMatch(/^vault-/);
    const seedV1 = randomBytes(32);
    const underV1 = h.envelope.encrypt(seedV1);

    fake.rotateKey('kek');
    await waitFor(() => h.envelope.currentKeyId() !== v1, 'the switch to transit version 2');
    expect(h.envelope.currentVersion()?.ref.version).toBe('2');
    const open = (r: typeof underV1) =>
      h.envelope.decrypt(r.ciphertext, r.keyId, r.annotations, timeoutSignal(3000));
    expect(await open(underV1)).toEqual(seedV1);
    expect(await open(underLocal)).toEqual(seedOld);
  });
});

describe('rotation with the aws provider (fake KMS)', () => {
  it('follows an on-demand rotation of the key material; data under the old material still decrypts', async () => {
    const restoreEnv = setEnv(STATIC_AWS_ENV);
    try {
      const fake = new FakeAwsKms();
      await fake.listen();
      fakes.push(fake);
      const key = fake.createKey();
      const h = await start({
        provider: 'aws',
        aws: { keyId: key.arn, endpoint: fake.url, region: fake.region, attemptTimeout: '1s' },
      });
      const a = h.envelope.currentKeyId()!;
      const seed = randomBytes(32);
      const underA = h.envelope.encrypt(seed);
      fake.rotate(key.keyId);
      await waitFor(() => h.envelope.currentKeyId() !== a, 'the switch to the new key material');
      expect(h.envelope.currentVersion()?.ref.version).not.toBe('original');
      expect(
        await h.envelope.decrypt(underA.ciphertext, underA.keyId, underA.annotations, timeoutSignal(3000)),
      ).toEqual(seed);
    } finally {
      restoreEnv();
    }
  });
});
