/**
 * The whole plugin (startPlugin: envelope, watcher, gRPC server) with the aws provider against the
 * fake, as kube-apiserver sees it over the socket: rotation and alias repoint change key_id while
 * old ciphertexts still decrypt; a disabled or deletion-scheduled key makes Status fail (writes stop)
 * until it is enabled again.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPlugin, type PluginHandle } from '../../src/app/plugin.js';
import { validateConfig } from '../../src/config/load.js';
import { KmsClient } from '../../src/server/client.js';
import type { EncryptResponse } from '../../src/server/proto.js';
import { FakeAwsKms } from '../fakes/aws-kms/index.js';
import {
  STATIC_AWS_ENV,
  TEST_ACCESS_KEY_ID,
  TEST_SECRET_ACCESS_KEY,
  captureLogger,
  setEnv,
} from '../fakes/aws-kms/harness.js';

let fake: FakeAwsKms;
let dir: string;
let restoreEnv: () => void;
let n = 0;

beforeAll(async () => {
  restoreEnv = setEnv(STATIC_AWS_ENV);
  dir = mkdtempSync(join(tmpdir(), 'aws-plugin-'));
  fake = new FakeAwsKms();
  fake.addCredentials(TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY);
  await fake.listen();
});
afterAll(async () => {
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
  restoreEnv();
});

interface Running {
  plugin: PluginHandle;
  client: KmsClient;
  close(): Promise<void>;
}

async function start(keyId: string): Promise<Running> {
  n += 1;
  const listen = `unix://${join(dir, `p${n}.sock`)}`;
  const config = validateConfig({
    provider: 'aws',
    aws: { keyId, region: fake.region, endpoint: fake.url, attemptTimeout: '1s' },
    listen,
    healthAddr: '',
    logLevel: 'silent',
    probe: { interval: '100ms', jitter: 0, stableObservations: 2, timeout: '2s' },
  });
  const plugin = await startPlugin(config, { logger: captureLogger('info').logger, waitForPrimeMs: 5000 });
  const client = new KmsClient(listen);
  return {
    plugin,
    client,
    close: async () => {
      client.close();
      await plugin.close();
    },
  };
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function roundTrip(client: KmsClient, enc: EncryptResponse, seed: Buffer): Promise<void> {
  const out = await client.decrypt({
    ciphertext: enc.ciphertext,
    key_id: enc.key_id,
    annotations: enc.annotations,
    uid: randomUUID(),
  });
  expect(Buffer.from(out.plaintext).equals(seed)).toBe(true);
}

test('rotation: a new key_id after the stable probes; old ciphertexts decrypt in this and a fresh process', async () => {
  const key = fake.createKey();
  const p = await start(key.arn);
  try {
    const s1 = await p.client.status();
    expect(s1.healthz).toBe('ok');
    const seed = randomBytes(32);
    const e1 = await p.client.encrypt({ plaintext: seed, uid: randomUUID() });
    expect(e1.key_id).toBe(s1.key_id);
    const annotations = JSON.stringify(
      Object.fromEntries(Object.entries(e1.annotations).map(([k, v]) => [k, Buffer.from(v).toString()])),
    );
    expect(annotations).not.toContain(TEST_SECRET_ACCESS_KEY);

    fake.rotate(key.keyId);
    const s2 = await until('a new key_id', async () => {
      const s = await p.client.status();
      return s.key_id !== s1.key_id ? s : undefined;
    });
    expect(s2.healthz).toBe('ok');
    const e2 = await p.client.encrypt({ plaintext: seed, uid: randomUUID() });
    expect(e2.key_id).toBe(s2.key_id);
    await roundTrip(p.client, e1, seed);
    await roundTrip(p.client, e2, seed);

    const fresh = await start(key.arn);
    try {
      expect((await fresh.client.status()).key_id).toBe(s2.key_id); // same key_id in another replica
      await roundTrip(fresh.client, e1, seed);
    } finally {
      await fresh.close();
    }
  } finally {
    await p.close();
  }
});

test('alias repoint: a new key_id; objects written under the old key still decrypt', async () => {
  const a = fake.createKey();
  const b = fake.createKey({ creationDate: a.creationDate + 1000 });
  fake.setAlias('alias/plugin-repoint', a.keyId);
  const p = await start('alias/plugin-repoint');
  try {
    const s1 = await p.client.status();
    const seed = randomBytes(32);
    const e1 = await p.client.encrypt({ plaintext: seed, uid: randomUUID() });
    fake.setAlias('alias/plugin-repoint', b.keyId);
    const s2 = await until('a new key_id', async () => {
      const s = await p.client.status();
      return s.key_id !== s1.key_id ? s : undefined;
    });
    const from = fake.log.length;
    const e2 = await p.client.encrypt({ plaintext: seed, uid: randomUUID() });
    expect(e2.key_id).toBe(s2.key_id);
    expect(fake.log.slice(from).every((r) => r.op !== 'Encrypt' || r.keyId === b.arn)).toBe(true);
    await roundTrip(p.client, e1, seed);
  } finally {
    await p.close();
  }
});

test('disabled, then scheduled for deletion: Status fails (writes stop) with the reason; re-enabled: healthy again', async () => {
  const key = fake.createKey();
  const p = await start(key.arn);
  try {
    const s1 = await p.client.status();
    fake.setKeyState(key.keyId, 'Disabled');
    const disabled = await until('Status to fail', async () => {
      try {
        await p.client.status(1000);
        return undefined;
      } catch (e) {
        return e as { code: number; details: string };
      }
    });
    expect(disabled.code).toBe(9); // FAILED_PRECONDITION
    expect(disabled.details).toContain('disabled');

    fake.setKeyState(key.keyId, 'PendingDeletion', { deletionDate: new Date('2026-12-31T00:00:00Z') });
    const pending = await until('Status to name the deletion', async () => {
      try {
        await p.client.status(1000);
        return undefined;
      } catch (e) {
        const err = e as { code: number; details: string };
        return err.details.includes('deletion') ? err : undefined;
      }
    });
    expect(pending.details).toContain('2026-12-31');
    const metrics = await p.plugin.metrics.registry.getSingleMetric('kms_plugin_kek_state')?.get();
    expect(
      metrics?.values.find((v) => v.labels.state === 'pending_deletion' && v.labels.provider === 'aws')
        ?.value,
    ).toBe(1);

    fake.setKeyState(key.keyId, 'Enabled');
    const back = await until('Status to recover', async () => p.client.status(1000));
    expect(back.healthz).toBe('ok');
    expect(back.key_id).toBe(s1.key_id); // same material, same key_id
  } finally {
    await p.close();
  }
});
