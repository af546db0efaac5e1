/**
 * Does the pkcs11 provider stall the event loop? Status latency of a plugin process with and
 * without 16 unwraps in flight, on a SoftHSM token made for the run (temp dir, SOFTHSM2_CONF).
 *
 * Plugin A (`--dek-max-uses 1`) encrypts N seeds, so each sits under its own DEK; a FRESH plugin B
 * then decrypts them with 16 workers (16 HSM unwraps in flight, none cached) while this script
 * sends sequential Status calls. Baseline: the same Status loop on B with nothing else running.
 * The same run with the `local` provider (unwrap in-process) is printed for comparison.
 *
 * Second part, in this process, without gRPC: event-loop delay (perf_hooks) idle and while 16
 * unwrap loops call the provider directly, which isolates the binding from the RPC work.
 *
 *   npx tsx bench/pkcs11-status.ts [--seeds 2000] [--status 600] [--concurrency 16] [--no-local]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Args } from './lib/args.js';
import { client, decryptCheck, encryptSeed, pool, type Sealed } from './lib/client.js';
import { describeMachine } from './lib/machine.js';
import { CLI, startOurs, tempDir } from './lib/procs.js';
import { benchLine, say, table } from './lib/report.js';
import { fmtUs, summarize, type Summary } from './lib/stats.js';

const args = new Args();
if (args.help) {
  say('usage: tsx bench/pkcs11-status.ts [--seeds 2000] [--status 600] [--concurrency 16] [--no-local]');
  process.exit(0);
}
const SEEDS = args.number('seeds', 2000);
const STATUS = args.number('status', 600);
const CONC = args.number('concurrency', 16);
const MODULE = process.env.SOFTHSM2_MODULE ?? '/usr/lib/softhsm/libsofthsm2.so';

async function statusLoop(socket: string, n: number, until?: () => boolean): Promise<number[]> {
  const c = client(socket);
  const out: number[] = [];
  try {
    for (let i = 0; i < n || (until !== undefined && !until()); i += 1) {
      if (until !== undefined && until() && i >= 50) break;
      const t = performance.now();
      await c.status(5000);
      out.push((performance.now() - t) * 1000);
    }
  } finally {
    c.close();
  }
  return out;
}

interface Result {
  provider: string;
  baseline: Summary;
  loaded: Summary;
  decrypt: Summary;
  unwrapsPerSec: number;
}

async function run(
  provider: string,
  providerArgs: string[],
  env: NodeJS.ProcessEnv,
  dir: string,
): Promise<Result> {
  const a = await startOurs(
    join(dir, `${provider}-a.sock`),
    [...providerArgs, '--dek-max-uses', '1'],
    env,
    `${provider}-a`,
  );
  let sealed: Sealed[];
  try {
    const c = client(a.socket);
    sealed = await pool(SEEDS, 8, () => encryptSeed(c));
    c.close();
  } finally {
    await a.stop();
  }
  const b = await startOurs(join(dir, `${provider}-b.sock`), providerArgs, env, `${provider}-b`);
  try {
    const baseline = summarize(await statusLoop(b.socket, STATUS));
    let done = false;
    const c = client(b.socket);
    const t0 = performance.now();
    const dec = pool(sealed.length, CONC, (i) => decryptCheck(c, sealed[i])).finally(() => (done = true));
    const loaded = summarize(await statusLoop(b.socket, 0, () => done));
    const lat = await dec;
    const secs = (performance.now() - t0) / 1000;
    c.close();
    return { provider, baseline, loaded, decrypt: summarize(lat), unwrapsPerSec: sealed.length / secs };
  } finally {
    await b.stop();
  }
}

/** Event-loop delay idle vs 16 unwrap loops on the provider itself (no gRPC). */
async function inProcess(conf: string, pinFile: string): Promise<void> {
  process.env.SOFTHSM2_CONF = conf; // before the module is initialised
  const { pkcs11Schema } = await import('../src/config/providers/pkcs11.js');
  const { createProvider } = await import('../src/kek/pkcs11/index.js');
  const { silentLogger } = await import('../src/observability/logger.js');
  const { Metrics } = await import('../src/observability/metrics.js');
  const { monitorEventLoopDelay } = await import('node:perf_hooks');
  const { randomBytes } = await import('node:crypto');
  const cfg = pkcs11Schema.parse({
    modulePath: MODULE,
    tokenLabel: 'bench',
    pinFile,
    keyLabel: 'kek',
    sessions: 4,
  });
  const p = await createProvider(cfg, {
    logger: silentLogger(),
    metrics: new Metrics({ processMetrics: false }),
    role: 'primary',
  });
  const keyFile = join(tmp.path, 'inproc-kek.json');
  execFileSync(process.execPath, [CLI, 'keygen', '--out', keyFile]);
  const { createKekProvider } = await import('../src/kek/registry.js');
  const local = await createKekProvider(
    {
      provider: 'local',
      local: { keyFile, allowInsecurePermissions: false, createIfMissing: false, watch: false },
    },
    { logger: silentLogger(), metrics: new Metrics({ processMetrics: false }), role: 'primary' },
  );
  type Prov = typeof p;
  const measure = async (
    prov: Prov | undefined,
    ms: number,
  ): Promise<{ p50: number; p99: number; max: number; ops: number }> => {
    const h = monitorEventLoopDelay({ resolution: 1 });
    let stop = false;
    let ops = 0;
    let loops: Array<Promise<void>> = [];
    if (prov) {
      const v = await prov.currentVersion(AbortSignal.timeout(5000));
      const w = await prov.wrap(randomBytes(32), v, AbortSignal.timeout(5000));
      loops = Array.from({ length: CONC }, async () => {
        while (!stop) {
          await prov.unwrap(w.wrapped, w.ref, AbortSignal.timeout(5000));
          ops += 1;
          // like an RPC arriving: the next unwrap starts from the event loop (a provider that
          // answers from memory would otherwise starve the loop in a microtask chain)
          await new Promise((r) => setImmediate(r));
        }
      });
    }
    h.enable();
    await new Promise((r) => setTimeout(r, ms));
    stop = true;
    h.disable();
    await Promise.all(loops);
    return {
      p50: h.percentile(50) / 1e6,
      p99: h.percentile(99) / 1e6,
      max: h.max / 1e6,
      ops: (ops * 1000) / ms,
    };
  };
  const idle = await measure(undefined, 3000);
  const loaded = await measure(p, 3000);
  const control = await measure(local, 3000);
  await local.close();
  await p.close();
  say(
    '\nin-process, no gRPC: event-loop delay (ms), idle vs 16 unwrap loops on the provider (local = in-process AES control)',
  );
  say(
    table(
      ['', 'delay p50', 'delay p99', 'delay max', 'unwraps/s'],
      [
        ['idle', idle.p50.toFixed(2), idle.p99.toFixed(2), idle.max.toFixed(2), 0],
        ...(
          [
            ['16 unwraps, pkcs11', loaded],
            ['16 unwraps, local', control],
          ] as const
        ).map(([name, r]) => [name, r.p50.toFixed(2), r.p99.toFixed(2), r.max.toFixed(2), Math.round(r.ops)]),
      ],
    ),
  );
  benchLine('pkcs11-status.event-loop', { idle, pkcs11: loaded, local: control });
}

const tmp = tempDir('kkp-bench-pkcs11-');
try {
  say(`machine: ${describeMachine()}`);
  say(`${SEEDS} seeds, each under its own DEK; ${CONC} concurrent Decrypts (unwraps) on a fresh plugin\n`);
  mkdirSync(join(tmp.path, 'tokens'));
  const conf = join(tmp.path, 'softhsm2.conf');
  writeFileSync(
    conf,
    `directories.tokendir = ${join(tmp.path, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`,
  );
  const env = { SOFTHSM2_CONF: conf };
  const run1 = (cmd: string, a: string[]): string =>
    execFileSync(cmd, a, { env: { ...process.env, ...env }, encoding: 'utf8' });
  run1('softhsm2-util', [
    '--init-token',
    '--free',
    '--label',
    'bench',
    '--so-pin',
    '87654321',
    '--pin',
    '24681357',
  ]);
  const pinFile = join(tmp.path, 'pin');
  writeFileSync(pinFile, '24681357\n', { mode: 0o600 });
  const p11 = [
    ...['--provider', 'pkcs11', '--pkcs11-module', MODULE, '--pkcs11-token-label', 'bench'],
    ...['--pkcs11-pin-file', pinFile, '--pkcs11-key-label', 'kek'],
  ];
  run1(process.execPath, [CLI, 'rotate', ...p11]);
  const results = [await run('pkcs11', p11, env, tmp.path)];
  if (!process.argv.includes('--no-local')) {
    const keyFile = join(tmp.path, 'kek.json');
    run1(process.execPath, [CLI, 'keygen', '--out', keyFile]);
    results.push(await run('local', ['--provider', 'local', '--local-key-file', keyFile], {}, tmp.path));
  }
  say(
    table(
      [
        'provider',
        'Status p50 idle',
        'Status p99 idle',
        'Status p50 16 unwraps',
        'Status p99 16 unwraps',
        'Decrypt p50',
        'Decrypt p99',
        'unwraps/s',
      ],
      results.map((r) => [
        r.provider,
        fmtUs(r.baseline.p50),
        fmtUs(r.baseline.p99),
        fmtUs(r.loaded.p50),
        fmtUs(r.loaded.p99),
        fmtUs(r.decrypt.p50),
        fmtUs(r.decrypt.p99),
        Math.round(r.unwrapsPerSec),
      ]),
    ),
  );
  for (const r of results) benchLine(`pkcs11-status.${r.provider}`, r);
  await inProcess(env.SOFTHSM2_CONF, pinFile);
} finally {
  tmp.cleanup();
}
