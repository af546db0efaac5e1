/**
 * Remote calls per KEK probe, per provider fake: the whole plugin in this process (startPlugin)
 * against the AWS, Vault and GCP fakes with a short probe interval, counting what each fake sees
 * between two readings of kms_plugin_kek_probes_total. Azure: the provider alone against the Key
 * Vault fake, one probe = newestVersion() + currentVersion(), as the rotation watcher does.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startPlugin, type PluginHandle } from '../../src/app/plugin.js';
import { validateConfig } from '../../src/config/load.js';
import { timeoutSignal } from '../../src/deadline.js';
import { AzureKekProvider } from '../../src/kek/azure/provider.js';
import type { KekProvider } from '../../src/kek/types.js';
import { createLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import { FakeAwsKms } from '../../test/fakes/aws-kms/fake.js';
import { STATIC_AWS_ENV, setEnv } from '../../test/fakes/aws-kms/harness.js';
import { makeTestPki } from '../../test/fakes/azure-keyvault/certs.js';
import { captureDeps, fakeConfig, StaticCredential } from '../../test/fakes/azure-keyvault/harness.js';
import { FakeKeyVault } from '../../test/fakes/azure-keyvault/server.js';
import { TEST_KEY } from '../../test/fakes/gcp-kms/harness.js';
import { FakeGcpKms } from '../../test/fakes/gcp-kms/server.js';
import { FakeVault } from '../../test/fakes/vault-transit/server.js';

export interface ProbeCalls {
  provider: string;
  how: string;
  probes: number;
  calls: number;
  callsPerProbe: number;
  byOp: Record<string, number>;
  /** At the default 60 s probe interval. */
  callsPerHour: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function tally(ops: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const op of ops) out[op] = (out[op] ?? 0) + 1;
  return out;
}

async function probesSoFar(metrics: Metrics): Promise<number> {
  const m = await metrics.registry.getSingleMetric('kms_plugin_kek_probes_total')?.get();
  return (m?.values ?? []).reduce((a, v) => a + v.value, 0);
}

/** Runs the plugin in process and measures calls per probe over `windowMs`. */
async function inProcess(
  provider: string,
  section: Record<string, unknown>,
  seen: () => string[],
  intervalMs: number,
  windowMs: number,
  socketDir: string,
): Promise<ProbeCalls> {
  const metrics = new Metrics({ processMetrics: false });
  const config = validateConfig({
    listen: `unix://${join(socketDir, `${provider}.sock`)}`,
    healthAddr: '',
    probe: { interval: `${intervalMs}ms`, jitter: 0 },
    ...section,
  });
  const h: PluginHandle = await startPlugin(config, {
    logger: createLogger({ level: 'silent' }),
    metrics,
    waitForPrimeMs: 15_000,
  });
  try {
    await sleep(2 * intervalMs);
    const p0 = await probesSoFar(metrics);
    const c0 = seen().length;
    await sleep(windowMs);
    const p1 = await probesSoFar(metrics);
    const ops = seen().slice(c0);
    const probes = p1 - p0;
    const perProbe = ops.length / probes;
    return {
      provider,
      how: `plugin in process, probe every ${intervalMs} ms, ${windowMs} ms window`,
      probes,
      calls: ops.length,
      callsPerProbe: Math.round(perProbe * 100) / 100,
      byOp: tally(ops),
      callsPerHour: Math.round(perProbe * 60),
    };
  } finally {
    await h.close();
  }
}

export async function measureAws(intervalMs: number, windowMs: number, dir: string): Promise<ProbeCalls[]> {
  const restore = setEnv(STATIC_AWS_ENV);
  const out: ProbeCalls[] = [];
  try {
    for (const omit of [false, true]) {
      const fake = new FakeAwsKms({ omitCurrentKeyMaterialId: omit });
      await fake.listen();
      try {
        const key = fake.createKey();
        const r = await inProcess(
          omit ? 'aws (no CurrentKeyMaterialId: ListKeyRotations fallback)' : 'aws',
          { provider: 'aws', aws: { keyId: key.arn, endpoint: fake.url, region: fake.region } },
          () => fake.log.map((l) => l.op),
          intervalMs,
          windowMs,
          dir,
        );
        out.push(r);
      } finally {
        await fake.close();
      }
    }
  } finally {
    restore();
  }
  return out;
}

export async function measureVault(intervalMs: number, windowMs: number, dir: string): Promise<ProbeCalls> {
  const fake = new FakeVault();
  const url = await fake.listen();
  try {
    fake.createKey('kek');
    const tokenFile = join(dir, 'vault-token');
    writeFileSync(tokenFile, `${fake.rootToken}\n`, { mode: 0o600 });
    return await inProcess(
      'vault',
      { provider: 'vault', vault: { address: url, keyName: 'kek', auth: { method: 'token', tokenFile } } },
      () => fake.requests.map((r) => `${r.method} ${r.path.replace(/^transit\/(\w+)\/.*/, 'transit/$1')}`),
      intervalMs,
      windowMs,
      dir,
    );
  } finally {
    await fake.close();
  }
}

export async function measureGcp(intervalMs: number, windowMs: number, dir: string): Promise<ProbeCalls> {
  const fake = await FakeGcpKms.start();
  try {
    fake.createKey(TEST_KEY);
    return await inProcess(
      'gcp',
      { provider: 'gcp', gcp: { keyName: TEST_KEY, endpoint: fake.endpoint, insecure: true } },
      () => fake.calls.map((c) => c.method),
      intervalMs,
      windowMs,
      dir,
    );
  } finally {
    await fake.close();
  }
}

export async function measureAzure(probes: number, dir: string): Promise<ProbeCalls> {
  const pki = makeTestPki();
  const caFile = join(dir, 'azure-ca.crt');
  writeFileSync(caFile, pki.ca, { mode: 0o644 });
  const vault = new FakeKeyVault({ pki });
  await vault.listen();
  const provider = new AzureKekProvider(fakeConfig(vault.url, caFile), captureDeps().deps, {
    credential: new StaticCredential(),
  });
  try {
    vault.createKey('kek');
    const kek: KekProvider = provider; // newestVersion() is optional
    const probe = async (): Promise<void> => {
      const sig = timeoutSignal(10_000);
      if (kek.newestVersion) await kek.newestVersion(sig);
      await kek.currentVersion(sig);
    };
    await probe(); // first contact: the bearer challenge
    const c0 = vault.seen.length;
    for (let i = 0; i < probes; i++) await probe();
    const ops = vault.seen.slice(c0).map((s) => s.op ?? `${s.method} ${s.path}`);
    const perProbe = ops.length / probes;
    return {
      provider: 'azure',
      how: `provider only (newestVersion + currentVersion per probe), ${probes} probes; token fetches not counted`,
      probes,
      calls: ops.length,
      callsPerProbe: Math.round(perProbe * 100) / 100,
      byOp: tally(ops),
      callsPerHour: Math.round(perProbe * 60),
    };
  } finally {
    await provider.close();
    await vault.close();
  }
}
