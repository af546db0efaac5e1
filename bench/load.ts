/**
 * RPC load: Status, Encrypt and Decrypt at several concurrencies with `kmsv2probe load`, against
 * our plugin (local provider) and the Go baseline (gorefplugin), interleaved A/B in the same run.
 *
 *   npx tsx bench/load.ts [--duration 10s] [--repeats 1] [--ops status,encrypt,decrypt]
 *                         [--concurrency 1,16,64] [--warmup 1s] [--plugin-args "--log-level warn"]
 *
 * Prints a table (medians over repeats; max = the largest max; errors summed; RSS = the largest)
 * with ours/Go ratios, then `BENCH load {json}`. Needs dist/ (npx tsc -p tsconfig.build.json &&
 * node scripts/postbuild.mjs) and /opt/kmsv2probe/bin (KMSV2PROBE_BIN).
 */
import { join } from 'node:path';
import { Args } from './lib/args.js';
import { describeMachine, loadAvg, machineInfo } from './lib/machine.js';
import { loadRun } from './lib/load.js';
import type { KV } from './lib/probe.js';
import { requireTools, runCli, startGo, startOurs, tempDir, type Plugin } from './lib/procs.js';
import { benchLine, say, table } from './lib/report.js';
import { fmtRatio, fmtUs, median, round } from './lib/stats.js';

const args = new Args();
if (args.help) {
  say(
    'usage: tsx bench/load.ts [--duration 10s] [--repeats 1] [--ops status,encrypt,decrypt] [--concurrency 1,16,64] [--warmup 1s] [--plugin-args "..."]',
  );
  process.exit(0);
}
const durationMs = args.durationMs('duration', '10s');
const warmupMs = args.durationMs('warmup', '1s');
const repeats = args.number('repeats', 1);
const ops = args.list('ops', 'status,encrypt,decrypt');
const concs = args.list('concurrency', '1,16,64').map(Number);
const pluginArgs = args.string('plugin-args', '').split(/\s+/).filter(Boolean);

interface Run {
  plugin: 'ours' | 'go';
  op: string;
  c: number;
  repeat: number;
  load: string;
  kv: KV;
}

function measure(p: Plugin, op: string, c: number): Promise<KV> {
  return loadRun(p, op, c, durationMs, warmupMs);
}

async function main(): Promise<void> {
  requireTools();
  const dir = tempDir();
  const keyFile = join(dir.path, 'kek.json');
  const kg = await runCli(['keygen', '--out', keyFile]);
  if (kg.code !== 0) throw new Error(`keygen failed: ${kg.out}`);
  say(`# bench/load ${new Date().toISOString()} — ${describeMachine()}`);
  say(
    `# duration ${durationMs} ms + warm-up ${warmupMs} ms per cell, ${repeats} repeat(s), plugin args: ${pluginArgs.join(' ') || '(defaults)'}`,
  );
  const ours = await startOurs(join(dir.path, 'ours.sock'), [
    '--provider',
    'local',
    '--local-key-file',
    keyFile,
    ...pluginArgs,
  ]);
  const go = await startGo(join(dir.path, 'go.sock'));
  const runs: Run[] = [];
  try {
    for (let repeat = 0; repeat < repeats; repeat++) {
      for (const op of ops) {
        for (const c of concs) {
          // Alternate who goes first, so drift in the machine's load hits both sides alike.
          const order: Array<['ours' | 'go', Plugin]> =
            (repeat + ops.indexOf(op) + concs.indexOf(c)) % 2 === 0
              ? [
                  ['ours', ours],
                  ['go', go],
                ]
              : [
                  ['go', go],
                  ['ours', ours],
                ];
          for (const [name, p] of order) {
            const load = loadAvg();
            const kv = await measure(p, op, c);
            runs.push({ plugin: name, op, c, repeat, load, kv });
            say(
              `  ${name.padEnd(4)} ${op.padEnd(7)} c=${String(c).padEnd(2)} #${repeat + 1}: ${Number(kv.ops_per_s).toFixed(0)} ops/s p50=${fmtUs(Number(kv.p50_us))} p99=${fmtUs(Number(kv.p99_us))} errors=${kv.errors} cpu/op=${kv.plugin_cpu_us_per_op}µs rss=${Math.round(Number(kv.plugin_rss_kb) / 1024)}MiB other=${kv.other_cpu_cores} load=${load}`,
            );
          }
        }
      }
    }
  } finally {
    await ours.stop();
    await go.stop();
    dir.cleanup();
  }

  const cell = (plugin: string, op: string, c: number) => {
    const rs = runs.filter((r) => r.plugin === plugin && r.op === op && r.c === c).map((r) => r.kv);
    const n = (k: string) => rs.map((kv) => Number(kv[k]));
    return {
      ops_per_s: round(median(n('ops_per_s'))),
      p50_us: median(n('p50_us')),
      p99_us: median(n('p99_us')),
      max_us: Math.max(...n('max_us')),
      errors: n('errors').reduce((a, b) => a + b, 0),
      cpu_us_per_op: round(median(n('plugin_cpu_us_per_op'))),
      rss_kb: Math.max(...n('plugin_rss_kb')),
      other_cpu_cores: round(median(n('other_cpu_cores')), 2),
    };
  };
  const rows: Array<Array<string | number>> = [];
  const results = [];
  for (const op of ops) {
    for (const c of concs) {
      const a = cell('ours', op, c);
      const b = cell('go', op, c);
      const ratio = { ops_per_s: a.ops_per_s / b.ops_per_s, p99: a.p99_us / b.p99_us };
      results.push({
        op,
        c,
        ours: a,
        go: b,
        ratio: { ops_per_s: round(ratio.ops_per_s, 3), p99: round(ratio.p99, 3) },
      });
      for (const [name, x] of [
        ['ours', a],
        ['go', b],
      ] as const) {
        rows.push([
          `${op} c=${c} ${name}`,
          x.ops_per_s.toFixed(0),
          fmtUs(x.p50_us),
          fmtUs(x.p99_us),
          fmtUs(x.max_us),
          x.errors,
          `${x.cpu_us_per_op} µs`,
          `${(x.rss_kb / 1024).toFixed(1)} MiB`,
          name === 'ours' ? fmtRatio(ratio.ops_per_s) : '',
          name === 'ours' ? fmtRatio(ratio.p99) : '',
        ]);
      }
    }
  }
  say();
  say(
    table(
      [
        'op / c / plugin',
        'ops/s',
        'p50',
        'p99',
        'max',
        'errors',
        'CPU/op',
        'RSS',
        'ops/s ours/Go',
        'p99 ours/Go',
      ],
      rows,
    ),
  );
  say();
  benchLine('load', {
    at: new Date().toISOString(),
    machine: machineInfo(),
    loadavg_end: loadAvg(),
    duration_ms: durationMs,
    warmup_ms: warmupMs,
    repeats,
    plugin_args: pluginArgs,
    results,
    runs: runs.map((r) => ({
      plugin: r.plugin,
      op: r.op,
      c: r.c,
      repeat: r.repeat,
      loadavg: r.load,
      ...r.kv,
    })),
  });
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
