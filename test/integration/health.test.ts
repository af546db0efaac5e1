/**
 * /livez, /readyz, /healthz and /metrics of a real plugin (in-process) whose KEK lives in the AWS
 * fake, while the KEK is healthy, unreachable, and disabled: liveness never depends on the KMS,
 * readiness follows "a DEK is ready", health follows the last probe, and the metrics say why.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { join } from 'node:path';
import { startPlugin, type PluginHandle } from '../../src/app/plugin.js';
import { validateConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/observability/logger.js';
import { KmsClient } from '../../src/server/client.js';
import { FakeAwsKms } from '../fakes/aws-kms/index.js';
import {
  STATIC_AWS_ENV,
  TEST_ACCESS_KEY_ID,
  TEST_SECRET_ACCESS_KEY,
  setEnv,
} from '../fakes/aws-kms/harness.js';
import { tempDir } from '../support/plugin-process.js';

const dir = tempDir('kkp-health-');
let fake: FakeAwsKms;
let restoreEnv: () => void;
let plugin: PluginHandle;
let client: KmsClient;
let keyArn: string;

async function get(path: string): Promise<{ status: number; body: string }> {
  const r = await fetch(`http://${plugin.healthAddress}${path}`);
  return { status: r.status, body: await r.text() };
}

async function until(what: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  restoreEnv = setEnv(STATIC_AWS_ENV);
  fake = new FakeAwsKms();
  fake.addCredentials(TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY);
  await fake.listen();
  keyArn = fake.createKey().arn;
  const listen = `unix://${join(dir.path, 'kms.sock')}`;
  plugin = await startPlugin(
    validateConfig({
      provider: 'aws',
      aws: { keyId: keyArn, region: fake.region, endpoint: fake.url, attemptTimeout: '300ms' },
      listen,
      healthAddr: '127.0.0.1:0',
      probe: { interval: '100ms', jitter: 0, timeout: '1s', healthGrace: '500ms' },
    }),
    { logger: silentLogger(), waitForPrimeMs: 5000 },
  );
  client = new KmsClient(listen);
});

afterAll(async () => {
  client?.close();
  await plugin?.close();
  await fake.close();
  restoreEnv();
  dir.cleanup();
});

describe('health endpoints over a real plugin', () => {
  it('all green while the KEK is healthy; /metrics carries the plugin metrics', async () => {
    expect((await get('/livez')).status).toBe(200);
    expect((await get('/readyz')).status).toBe(200);
    const h = await get('/healthz?verbose');
    expect(h.status).toBe(200);
    expect(h.body).toContain('[+]kek-probe ok');
    const m = await get('/metrics');
    expect(m.body).toMatch(/kms_plugin_kek_state\{provider="aws",role="primary",state="enabled"\} 1/);
    expect(m.body).toMatch(/kms_plugin_ready 1/);
    const since = Number(/kms_plugin_seconds_since_last_successful_probe ([0-9.e-]+)/.exec(m.body)?.[1]);
    expect(since).toBeGreaterThanOrEqual(0);
    expect(since).toBeLessThan(2); // probes every 100 ms
    expect(m.body).not.toContain(TEST_SECRET_ACCESS_KEY);
  });

  it('KMS unreachable: live and ready stay 200, healthz turns 503 after the grace, Status keeps its key_id', async () => {
    const before = await client.status();
    fake.faultRule = () => ({ status: 503, type: 'ServiceUnavailableException' });
    try {
      await until(async () => (await get('/healthz')).status === 503);
      expect((await get('/livez')).status).toBe(200);
      expect((await get('/readyz')).status).toBe(200);
      const verbose = await get('/healthz?verbose');
      expect(verbose.body).toMatch(/\[-\]kek-probe failed: .*kek probe failing/);
      const s = await client.status();
      expect(s.key_id).toBe(before.key_id);
      expect(s.healthz).not.toBe('ok');
      const m = (await get('/metrics')).body;
      expect(m).toMatch(/kms_plugin_healthy 0/);
      expect(
        Number(/kms_plugin_seconds_since_last_successful_probe ([0-9.e-]+)/.exec(m)?.[1]),
      ).toBeGreaterThan(0.4);
    } finally {
      fake.faultRule = undefined;
    }
    await until(async () => (await get('/healthz')).status === 200);
    expect((await client.status()).healthz).toBe('ok');
  });

  it('KEK disabled: healthz 503 naming the state, Status fails (writes stop), livez still 200; recovers when re-enabled', async () => {
    fake.setKeyState(keyArn, 'Disabled');
    try {
      // The state is seen on the next probe (a 503 may show up earlier from a failing probe).
      await until(async () => /kek disabled/.test((await get('/healthz?verbose')).body));
      expect((await get('/healthz')).status).toBe(503);
      expect((await get('/livez')).status).toBe(200);
      await expect(client.status()).rejects.toMatchObject({ code: 9 }); // FAILED_PRECONDITION
      expect((await get('/metrics')).body).toMatch(
        /kms_plugin_kek_state\{provider="aws",role="primary",state="disabled"\} 1/,
      );
    } finally {
      fake.setKeyState(keyArn, 'Enabled');
    }
    await until(async () => (await get('/healthz')).status === 200);
    expect((await client.status()).healthz).toBe('ok');
  });
});
