/**
 * Footprint: time from process start to socket bound and to ready (Status ok), idle RSS after
 * priming, and remote KMS calls per hour in steady state with default probe settings.
 *
 *   npx tsx bench/footprint.ts [--starts 5] [--prime 2000] [--settle 5s]
 *                              [--probe-interval 250ms] [--window 10s] [--direct 0|3m]
 *
 * Remote calls: calls per probe are measured against each provider fake with a short probe
 * interval and scaled to the default 60 s interval (see lib/providers.ts). With `--direct 3m` the
 * plugin also runs as a child process with DEFAULT settings against the AWS fake, and every call
 * after start-up is counted and scaled to an hour.
 */
import { join } from 'node:path';
import { Args } from './lib/args.js';
import { startAwsFake } from './lib/aws.js';
import { client, decryptCheck, encryptSeed, pool } from './lib/client.js';
import { describeMachine, loadAvg, machineInfo } from './lib/machine.js';
import { requireTools, rssKb, runCli, startGo, startOurs, tempDir, type Plugin } from './lib/procs.js';
import { measureAws, measureAzure, measureGcp, measureVault, type ProbeCalls } from './lib/providers.js';
import { benchLine, say, table } from './lib/report.js';
import { median, round } from './lib/stats.js';

const args = new Args();
if (args.help) {
  say(
    'usage: tsx bench/footprint.ts [--starts 5] [--prime 2000] [--settle 5s] [--probe-interval 250ms] [--window 10s] [--direct 0|3m]',
  );
  process.exit(0);
}
const starts = args.number('starts', 5);
const prime = args.number('prime', 2000);
const settleMs = args.durationMs('settle', '5s');
const intervalMs = args.durationMs('probe-interval', '250ms');
const windowMs = args.durationMs('window', '10s');
const directMs = args.durationMs('direct', '0');

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface StartupRow {
  plugin: string;
  bound_ms: number[];
  ready_ms: number[];
  rss_at_ready_kb: number[];
  loadavg: string;
}

async function startupTimes(name: string, start: (i: number) => Promise<Plugin>): Promise<StartupRow> {
  const row: StartupRow = {
    plugin: name,
    bound_ms: [],
    ready_ms: [],
    rss_at_ready_kb: [],
    loadavg: loadAvg(),
  };
  for (let i = 0; i < starts; i++) {
    const p = await start(i);
    row.bound_ms.push(round(p.boundMs));
    row.ready_ms.push(round(p.readyMs));
    row.rss_at_ready_kb.push(rssKb(p.pid));
    await p.stop();
  }
  return row;
}

/** Prime with Encrypts and Decrypts, let it settle, read RSS. */
async function idleRss(
  p: Plugin,
): Promise<{ plugin: string; after_start_kb: number; idle_after_prime_kb: number }> {
  const afterStart = rssKb(p.pid);
  const c = client(p.socket);
  const sealed = await pool(prime, 16, () => encryptSeed(c));
  await pool(sealed.length, 16, (i) => decryptCheck(c, sealed[i]));
  c.close();
  await sleep(settleMs);
  return { plugin: p.name, after_start_kb: afterStart, idle_after_prime_kb: rssKb(p.pid) };
}

async function direct(dir: string): Promise<Record<string, unknown>> {
  const aws = await startAwsFake(0);
  try {
    const p = await startOurs(join(dir, 'direct.sock'), aws.args, aws.env, 'ours-aws-default');
    const startup = aws.fake.log.map((l) => l.op);
    aws.fake.reset();
    await sleep(directMs);
    const ops = aws.fake.log.map((l) => l.op);
    await p.stop();
    const byOp: Record<string, number> = {};
    for (const op of ops) byOp[op] = (byOp[op] ?? 0) + 1;
    return {
      duration_ms: directMs,
      startup_calls: startup.length,
      calls: ops.length,
      by_op: byOp,
      calls_per_hour: Math.round((ops.length * 3_600_000) / directMs),
    };
  } finally {
    await aws.fake.close();
  }
}

async function main(): Promise<void> {
  requireTools();
  say(`# bench/footprint ${new Date().toISOString()} — ${describeMachine()}`);
  const dir = tempDir();
  const keyFile = join(dir.path, 'kek.json');
  const kg = await runCli(['keygen', '--out', keyFile]);
  if (kg.code !== 0) throw new Error(`keygen failed: ${kg.out}`);
  const local = ['--provider', 'local', '--local-key-file', keyFile];

  // ---- start-up -----------------------------------------------------------------------
  const aws = await startAwsFake(0);
  const startup: StartupRow[] = [];
  try {
    startup.push(await startupTimes('ours (local)', (i) => startOurs(join(dir.path, `l${i}.sock`), local)));
    startup.push(
      await startupTimes('ours (aws fake)', (i) =>
        startOurs(join(dir.path, `a${i}.sock`), aws.args, aws.env),
      ),
    );
    startup.push(await startupTimes('gorefplugin', (i) => startGo(join(dir.path, `g${i}.sock`))));
  } finally {
    await aws.fake.close();
  }
  say(
    table(
      ['plugin', 'socket bound (median, min–max)', 'ready (median, min–max)', 'RSS at ready', 'load'],
      startup.map((r) => [
        r.plugin,
        `${median(r.bound_ms)} ms (${Math.min(...r.bound_ms)}–${Math.max(...r.bound_ms)})`,
        `${median(r.ready_ms)} ms (${Math.min(...r.ready_ms)}–${Math.max(...r.ready_ms)})`,
        `${(median(r.rss_at_ready_kb) / 1024).toFixed(1)} MiB`,
        r.loadavg,
      ]),
    ),
  );
  say();

  // ---- idle RSS -----------------------------------------------------------------------
  const rss = [];
  for (const start of [
    () => startOurs(join(dir.path, 'rss.sock'), local),
    () => startGo(join(dir.path, 'rssg.sock')),
  ]) {
    const p = await start();
    try {
      rss.push(await idleRss(p));
    } finally {
      await p.stop();
    }
  }
  say(
    table(
      [
        'plugin',
        'RSS after start',
        `idle RSS after ${prime} Encrypt + ${prime} Decrypt, ${settleMs} ms settle`,
      ],
      rss.map((r) => [
        r.plugin,
        `${(r.after_start_kb / 1024).toFixed(1)} MiB`,
        `${(r.idle_after_prime_kb / 1024).toFixed(1)} MiB`,
      ]),
    ),
  );
  say();

  // ---- remote calls per probe, per provider fake ---------------------------------------------
  const calls: ProbeCalls[] = [];
  const attempt = async (what: string, f: () => Promise<ProbeCalls | ProbeCalls[]>): Promise<void> => {
    try {
      const r = await f();
      calls.push(...(Array.isArray(r) ? r : [r]));
    } catch (err) {
      say(`  ${what}: not measured (${err instanceof Error ? err.message : String(err)})`);
    }
  };
  await attempt('aws', () => measureAws(intervalMs, windowMs, dir.path));
  await attempt('vault', () => measureVault(intervalMs, windowMs, dir.path));
  await attempt('gcp', () => measureGcp(intervalMs, windowMs, dir.path));
  await attempt('azure', () => measureAzure(Math.max(10, Math.round(windowMs / intervalMs)), dir.path));
  say(
    table(
      ['provider', 'probes', 'calls', 'calls/probe', 'by operation', 'calls/hour at 60 s', '≤ 60?'],
      calls.map((c) => [
        c.provider,
        c.probes,
        c.calls,
        c.callsPerProbe,
        Object.entries(c.byOp)
          .map(([k, v]) => `${k} ${v}`)
          .join(', '),
        c.callsPerHour,
        c.callsPerHour <= 60 ? 'yes' : 'no',
      ]),
    ),
  );
  say();

  let directResult: Record<string, unknown> | undefined;
  if (directMs > 0) {
    directResult = await direct(dir.path);
    say(
      `direct, aws fake, default settings, ${directMs} ms: ${String(directResult.calls)} calls after start-up (${JSON.stringify(directResult.by_op)}) → ${String(directResult.calls_per_hour)} calls/hour`,
    );
    say();
  }
  dir.cleanup();

  benchLine('footprint', {
    at: new Date().toISOString(),
    machine: machineInfo(),
    loadavg_end: loadAvg(),
    startup,
    rss,
    remote_calls: calls,
    probe_interval_ms: intervalMs,
    window_ms: windowMs,
    direct: directResult,
  });
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
