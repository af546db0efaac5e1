/**
 * `npm run bench:compare`: our plugin against the Go baseline (gorefplugin) in one run, next to
 * the grpc-js floor, and the issue-16 targets checked on the spot.
 *
 *   npx tsx bench/compare.ts [--duration 4s] [--warmup 1s] [--repeats 3] [--ops status,encrypt,decrypt]
 *                            [--concurrency 1,16] [--cadence 60s] [--status-every 5s] [--seeds 300]
 *                            [--plugin-args "..."] [--node-options "..."] [--malloc-arena-max N]
 *                            [--floor 1] [--plugin-logs pipe|file]
 *
 * 1. Saturation: `kmsv2probe load` per (op, concurrency), ours, Go and the grpc-js floor back to
 *    back in the same conditions, rotating who goes first, `--repeats` times. Medians of the
 *    repeats; RSS is the largest seen. The plugins run for the whole phase.
 *    `--repeats 0` skips this phase.
 *    The floor (`node bench/grpc-floor.mjs`: a grpc-js server whose handlers do no work, with the
 *    plugin's built codecs, no tsx loader) gets the same NODE_OPTIONS / MALLOC_ARENA_MAX as ours:
 *    what the floor misses too is grpc-js's ceiling on this machine, not our code's. `--floor 0`
 *    leaves it out.
 * 2. Real cadence (unless `--cadence 0`): a FRESH plugin of each kind with the shipped defaults,
 *    one Status every `--status-every` (the apiserver sends one every 20–60 s; this is faster),
 *    and a cold-start burst (`kmsv2probe coldstart --seeds N`: N Encrypts, then N Decrypts, at
 *    c=1 and c=10) a third of the way in. RSS is sampled every 250 ms: the peak and the end.
 *
 * The plugins' stdout and stderr go through a pipe that this process drains (`--plugin-logs pipe`,
 * the default), as containerd or journald drain a deployed plugin's; `--plugin-logs file` writes
 * them to files instead (before issue 16's fourth pass), which on this VM charges our plugin the
 * kernel's ext4 work for its per-RPC access lines (bench/lib/procs.ts LogSink).
 *
 * Our plugin is started as the shipped manifests start it: `node $NODE_OPTIONS dist/cli/main.js
 * serve` with the shipped environment (SHIPPED_ENV in src/cli/render/node-options.ts:
 * NODE_OPTIONS and MALLOC_ARENA_MAX) unless `--node-options` / `--malloc-arena-max` say otherwise
 * (an empty value unsets it). Prints the table of ours vs Go, the floor's table, the real-cadence
 * table, the targets (with the floor's figure for each and what it says), then
 * `BENCH compare {json}`.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { KmsClient } from '../src/server/client.js';
import { SHIPPED_MALLOC_ARENA_MAX, SHIPPED_NODE_OPTIONS } from '../src/cli/render/node-options.js';
import { Args } from './lib/args.js';
import { loadRun } from './lib/load.js';
import { describeMachine, loadAvg, machineInfo } from './lib/machine.js';
import { runProbe, type KV } from './lib/probe.js';
import {
  FLOOR_HEADERS,
  floorFigures,
  floorRow,
  rotate,
  summarizeCell,
  targetChecks,
  targetsTable,
  type Cell,
  type Result,
} from './lib/compare.js';
import {
  FLOOR,
  requireTools,
  rssKb,
  runCli,
  startFloor,
  startGo,
  startOurs,
  tempDir,
  type LogSink,
  type Plugin,
} from './lib/procs.js';
import { benchLine, say, table } from './lib/report.js';
import { fmtRatio, fmtUs } from './lib/stats.js';

const args = new Args();
if (args.help) {
  say(
    'usage: tsx bench/compare.ts [--duration 4s] [--warmup 1s] [--repeats 3] [--ops status,encrypt,decrypt] [--concurrency 1,16] [--cadence 60s] [--status-every 5s] [--seeds 300] [--plugin-args "..."] [--node-options "..."] [--malloc-arena-max N] [--floor 1] [--plugin-logs pipe|file]',
  );
  process.exit(0);
}
const durationMs = args.durationMs('duration', '4s');
const warmupMs = args.durationMs('warmup', '1s');
const repeats = args.number('repeats', 3);
const ops = args.list('ops', 'status,encrypt,decrypt');
const concs = args.list('concurrency', '1,16').map(Number);
const cadenceMs = args.durationMs('cadence', '60s');
const statusEveryMs = args.durationMs('status-every', '5s');
const seeds = args.number('seeds', 300);
const pluginArgs = args.string('plugin-args', '').split(/\s+/).filter(Boolean);
const nodeOptions = args.string('node-options', SHIPPED_NODE_OPTIONS);
const mallocArenaMax = args.string('malloc-arena-max', SHIPPED_MALLOC_ARENA_MAX);
const withFloor = args.number('floor', 1) !== 0;
const pluginLogs = args.string('plugin-logs', 'pipe');
if (pluginLogs !== 'pipe' && pluginLogs !== 'file') {
  say(`--plugin-logs: "${pluginLogs}" is neither pipe nor file`);
  process.exit(2);
}
const logs: LogSink = pluginLogs;
/** Ours and the floor run with this (undefined = unset). */
const nodeEnv = { NODE_OPTIONS: nodeOptions || undefined, MALLOC_ARENA_MAX: mallocArenaMax || undefined };

const MB = 1_000_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

type Name = 'ours' | 'go' | 'floor';

interface Run {
  plugin: Name;
  op: string;
  c: number;
  repeat: number;
  loadavg: string;
  kv: KV;
}

async function startPlugins(
  dir: string,
  keyFile: string,
  tag: string,
  floor = false,
): Promise<{ ours: Plugin; go: Plugin; floor?: Plugin }> {
  const ours = await startOurs(
    join(dir, `ours-${tag}.sock`),
    ['--provider', 'local', '--local-key-file', keyFile, ...pluginArgs],
    nodeEnv,
    'ours',
    logs,
  );
  const go = await startGo(join(dir, `go-${tag}.sock`), logs);
  if (!floor) return { ours, go };
  try {
    return { ours, go, floor: await startFloor(join(dir, `floor-${tag}.sock`), nodeEnv, 'floor', logs) };
  } catch (err) {
    await ours.stop();
    await go.stop();
    throw err;
  }
}

async function saturation(dir: string, keyFile: string): Promise<Run[]> {
  const { ours, go, floor } = await startPlugins(dir, keyFile, 'load', withFloor);
  const plugins: Array<[Name, Plugin]> = [
    ['ours', ours],
    ['go', go],
  ];
  if (floor) plugins.push(['floor', floor]);
  const runs: Run[] = [];
  try {
    for (let repeat = 0; repeat < repeats; repeat++) {
      for (const op of ops) {
        for (const c of concs) {
          // Who goes first moves along by one per cell and per repeat (ours, Go, floor, ours, …).
          const order = rotate(plugins, repeat + ops.indexOf(op) + concs.indexOf(c));
          for (const [name, p] of order) {
            const loadavg = loadAvg();
            const kv = await loadRun(p, op, c, durationMs, warmupMs);
            runs.push({ plugin: name, op, c, repeat, loadavg, kv });
            process.stderr.write(
              `  ${name.padEnd(5)} ${op.padEnd(7)} c=${String(c).padEnd(2)} #${repeat + 1}: ${Number(kv.ops_per_s).toFixed(0)} ops/s p99=${fmtUs(Number(kv.p99_us))} cpu/op=${kv.plugin_cpu_us_per_op}µs rss=${(Number(kv.plugin_rss_kb) / 1024).toFixed(0)}MiB other=${kv.other_cpu_cores} load=${loadavg}\n`,
            );
          }
        }
      }
    }
  } finally {
    await ours.stop();
    await go.stop();
    await floor?.stop();
  }
  return runs;
}

interface Cadence {
  plugin: string;
  rss_start_kb: number;
  rss_peak_kb: number;
  rss_end_kb: number;
  statuses: number;
  status_errors: number;
  coldstart: KV[];
}

/** A fresh plugin at the apiserver's pace: Status every few seconds, one cold-start burst. */
async function cadence(p: Plugin): Promise<Cadence> {
  const out: Cadence = {
    plugin: p.name,
    rss_start_kb: rssKb(p.pid),
    rss_peak_kb: 0,
    rss_end_kb: 0,
    statuses: 0,
    status_errors: 0,
    coldstart: [],
  };
  const sample = setInterval(() => {
    out.rss_peak_kb = Math.max(out.rss_peak_kb, rssKb(p.pid) || 0);
  }, 250);
  // One long-lived connection, as kube-apiserver keeps.
  const client = new KmsClient(`unix://${p.socket}`);
  const t0 = Date.now();
  let burst: Promise<void> | undefined;
  try {
    while (Date.now() - t0 < cadenceMs) {
      out.statuses += 1;
      try {
        if ((await client.status(3000)).healthz !== 'ok') out.status_errors += 1;
      } catch {
        out.status_errors += 1;
      }
      if (!burst && Date.now() - t0 >= cadenceMs / 3) {
        burst = runProbe(
          [
            'coldstart',
            '--socket',
            p.socket,
            '--seeds',
            String(seeds),
            '--concurrency',
            '1,10',
            '--plugin-pid',
            String(p.pid),
          ],
          'coldstart',
        ).then((r) => {
          if (r.code !== 0)
            throw new Error(`kmsv2probe coldstart failed (exit ${r.code}): ${r.stdout}${r.stderr}`);
          out.coldstart = r.lines;
        });
      }
      await sleep(statusEveryMs);
    }
    await burst;
  } finally {
    clearInterval(sample);
    client.close();
  }
  out.rss_end_kb = rssKb(p.pid);
  out.rss_peak_kb = Math.max(out.rss_peak_kb, out.rss_end_kb);
  return out;
}

async function main(): Promise<void> {
  requireTools();
  const builtCodecs = resolve(process.cwd(), 'dist/server/proto.js');
  if (withFloor && !existsSync(builtCodecs))
    throw new Error(`${builtCodecs} is missing (the floor runs on the built codecs): run npm run build`);
  const dir = tempDir('kkp-compare-');
  const keyFile = join(dir.path, 'kek.json');
  const kg = await runCli(['keygen', '--out', keyFile]);
  if (kg.code !== 0) throw new Error(`keygen failed: ${kg.out}`);
  say(`# bench/compare ${new Date().toISOString()} — ${describeMachine()}`);
  say(
    `# ${durationMs} ms + ${warmupMs} ms warm-up per cell, ${repeats} interleaved repeat(s); NODE_OPTIONS for ours${withFloor ? ' and the floor' : ''}: ${nodeOptions || '(none)'}, MALLOC_ARENA_MAX: ${mallocArenaMax || '(unset)'}; plugin args: ${pluginArgs.join(' ') || '(defaults)'}; plugin logs: ${logs === 'pipe' ? 'a pipe we drain (as containerd/journald)' : 'files'}`,
  );
  say(
    withFloor
      ? `# grpc-js floor: node ${FLOOR} (handlers doing no work, the plugin's built codecs and HTTP/2 stream table)`
      : '# grpc-js floor: off (--floor 0)',
  );
  let runs: Run[] = [];
  const cadences: Cadence[] = [];
  try {
    if (repeats > 0) runs = await saturation(dir.path, keyFile);
    if (cadenceMs > 0) {
      // Fresh processes: the cadence figure must not inherit the heap grown under saturation.
      const { ours, go } = await startPlugins(dir.path, keyFile, 'cadence');
      try {
        const [a, b] = await Promise.all([cadence(ours), cadence(go)]);
        cadences.push(a, b);
      } finally {
        await ours.stop();
        await go.stop();
      }
    }
  } finally {
    dir.cleanup();
  }

  const cell = (plugin: Name, op: string, c: number): Cell =>
    summarizeCell(runs.filter((r) => r.plugin === plugin && r.op === op && r.c === c).map((r) => r.kv));
  const results: Result[] = [];
  const rows: Array<Array<string | number>> = [];
  const floorRows: string[][] = [];
  for (const op of ops) {
    for (const c of concs) {
      // --repeats 0 (the real-cadence phase alone): no load cells, so no load rows or targets.
      if (!runs.some((x) => x.op === op && x.c === c)) continue;
      const a = cell('ours', op, c);
      const b = cell('go', op, c);
      const f = withFloor ? floorFigures(a, b, cell('floor', op, c)) : undefined;
      const r: Result = {
        op,
        c,
        ours: a,
        go: b,
        ratio: a.ops_per_s / b.ops_per_s,
        p99_ratio: a.p99_us / b.p99_us,
        ...f,
      };
      if (f) floorRows.push(floorRow(`${op} c=${c}`, f));
      results.push(r);
      rows.push([
        `${op} c=${c}`,
        a.ops_per_s.toFixed(0),
        b.ops_per_s.toFixed(0),
        fmtRatio(r.ratio),
        fmtUs(a.p99_us),
        fmtUs(b.p99_us),
        fmtRatio(r.p99_ratio),
        `${a.cpu_us_per_op} µs`,
        `${b.cpu_us_per_op} µs`,
        `${((a.rss_kb * 1024) / MB).toFixed(0)} MB`,
        `${((b.rss_kb * 1024) / MB).toFixed(0)} MB`,
        `${a.errors}/${b.errors}`,
        a.other_cpu_cores,
      ]);
    }
  }
  say();
  say(
    table(
      [
        'workload',
        'ours ops/s',
        'Go ops/s',
        'ratio',
        'ours p99',
        'Go p99',
        'p99 ratio',
        'ours CPU/op',
        'Go CPU/op',
        'ours RSS',
        'Go RSS',
        'errors',
        'other cores',
      ],
      rows,
    ),
  );
  if (floorRows.length) {
    say();
    say('grpc-js floor (handlers doing no work), same NODE_OPTIONS / MALLOC_ARENA_MAX as ours:');
    say(table(FLOOR_HEADERS, floorRows));
  }
  if (cadences.length) {
    say();
    say(
      table(
        ['real cadence (fresh process)', 'RSS at start', 'RSS peak', 'RSS end', 'Status calls', 'cold start'],
        cadences.map((c) => [
          c.plugin,
          `${((c.rss_start_kb * 1024) / MB).toFixed(1)} MB`,
          `${((c.rss_peak_kb * 1024) / MB).toFixed(1)} MB`,
          `${((c.rss_end_kb * 1024) / MB).toFixed(1)} MB`,
          `${c.statuses} (${c.status_errors} failed)`,
          c.coldstart
            .map((l) => `c=${l.concurrency ?? l.c ?? '?'}: ${l.total_ms ?? l.total_s ?? '?'}`)
            .join(', '),
        ]),
      ),
    );
  }

  const oc = cadences.find((c) => c.plugin === 'ours');
  const checks = targetChecks(results, concs, oc?.rss_peak_kb);
  say();
  say(targetsTable(checks, withFloor));
  say();
  benchLine('compare', {
    at: new Date().toISOString(),
    machine: machineInfo(),
    loadavg_end: loadAvg(),
    duration_ms: durationMs,
    warmup_ms: warmupMs,
    repeats,
    node_options: nodeOptions,
    malloc_arena_max: mallocArenaMax,
    plugin_args: pluginArgs,
    floor: withFloor,
    plugin_logs: logs,
    results,
    cadence: cadences,
    targets: checks,
    runs: runs.map((r) => ({
      plugin: r.plugin,
      op: r.op,
      c: r.c,
      repeat: r.repeat,
      loadavg: r.loadavg,
      ...r.kv,
    })),
  });
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
