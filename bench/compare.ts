/**
 * `npm run bench:compare`: our plugin against the Go baseline (gorefplugin) in one run, and the
 * issue-16 targets checked on the spot.
 *
 *   npx tsx bench/compare.ts [--duration 4s] [--warmup 1s] [--repeats 3] [--ops status,encrypt,decrypt]
 *                            [--concurrency 1,16] [--cadence 60s] [--status-every 5s] [--seeds 300]
 *                            [--plugin-args "..."] [--node-options "..."] [--malloc-arena-max N]
 *
 * 1. Saturation: `kmsv2probe load` per (op, concurrency), ours and Go back to back in the same
 *    conditions, alternating who goes first, `--repeats` times. Medians of the repeats; RSS is
 *    the largest seen. Both plugins run for the whole phase.
 *    `--repeats 0` skips this phase.
 * 2. Real cadence (unless `--cadence 0`): a FRESH plugin of each kind with the shipped defaults,
 *    one Status every `--status-every` (the apiserver sends one every 20–60 s; this is faster),
 *    and a cold-start burst (`kmsv2probe coldstart --seeds N`: N Encrypts, then N Decrypts, at
 *    c=1 and c=10) a third of the way in. RSS is sampled every 250 ms: the peak and the end.
 *
 * Our plugin is started as the shipped manifests start it: `node $NODE_OPTIONS dist/cli/main.js
 * serve` with the shipped environment (SHIPPED_ENV in src/cli/render/node-options.ts:
 * NODE_OPTIONS and MALLOC_ARENA_MAX) unless `--node-options` / `--malloc-arena-max` say otherwise
 * (an empty value unsets it). Prints one table, the targets, then `BENCH compare {json}`.
 */
import { join } from 'node:path';
import { KmsClient } from '../src/server/client.js';
import { SHIPPED_MALLOC_ARENA_MAX, SHIPPED_NODE_OPTIONS } from '../src/cli/render/node-options.js';
import { Args } from './lib/args.js';
import { loadRun } from './lib/load.js';
import { describeMachine, loadAvg, machineInfo } from './lib/machine.js';
import { runProbe, type KV } from './lib/probe.js';
import { requireTools, rssKb, runCli, startGo, startOurs, tempDir, type Plugin } from './lib/procs.js';
import { benchLine, say, table } from './lib/report.js';
import { fmtRatio, fmtUs, median, round } from './lib/stats.js';

const args = new Args();
if (args.help) {
  say(
    'usage: tsx bench/compare.ts [--duration 4s] [--warmup 1s] [--repeats 3] [--ops status,encrypt,decrypt] [--concurrency 1,16] [--cadence 60s] [--status-every 5s] [--seeds 300] [--plugin-args "..."] [--node-options "..."] [--malloc-arena-max N]',
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

const MB = 1_000_000;
const TARGET = { ratio: 0.5, p99: 2, cpuVsStatus: 1.15, rssLoadMB: 128, rssCadenceMB: 80 };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Run {
  plugin: 'ours' | 'go';
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
): Promise<{ ours: Plugin; go: Plugin }> {
  const ours = await startOurs(
    join(dir, `ours-${tag}.sock`),
    ['--provider', 'local', '--local-key-file', keyFile, ...pluginArgs],
    { NODE_OPTIONS: nodeOptions || undefined, MALLOC_ARENA_MAX: mallocArenaMax || undefined },
  );
  const go = await startGo(join(dir, `go-${tag}.sock`));
  return { ours, go };
}

async function saturation(dir: string, keyFile: string): Promise<Run[]> {
  const { ours, go } = await startPlugins(dir, keyFile, 'load');
  const runs: Run[] = [];
  try {
    for (let repeat = 0; repeat < repeats; repeat++) {
      for (const op of ops) {
        for (const c of concs) {
          const oursFirst = (repeat + ops.indexOf(op) + concs.indexOf(c)) % 2 === 0;
          const order: Array<['ours' | 'go', Plugin]> = oursFirst
            ? [
                ['ours', ours],
                ['go', go],
              ]
            : [
                ['go', go],
                ['ours', ours],
              ];
          for (const [name, p] of order) {
            const loadavg = loadAvg();
            const kv = await loadRun(p, op, c, durationMs, warmupMs);
            runs.push({ plugin: name, op, c, repeat, loadavg, kv });
            process.stderr.write(
              `  ${name.padEnd(4)} ${op.padEnd(7)} c=${String(c).padEnd(2)} #${repeat + 1}: ${Number(kv.ops_per_s).toFixed(0)} ops/s p99=${fmtUs(Number(kv.p99_us))} cpu/op=${kv.plugin_cpu_us_per_op}µs rss=${(Number(kv.plugin_rss_kb) / 1024).toFixed(0)}MiB other=${kv.other_cpu_cores} load=${loadavg}\n`,
            );
          }
        }
      }
    }
  } finally {
    await ours.stop();
    await go.stop();
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
  const dir = tempDir('kkp-compare-');
  const keyFile = join(dir.path, 'kek.json');
  const kg = await runCli(['keygen', '--out', keyFile]);
  if (kg.code !== 0) throw new Error(`keygen failed: ${kg.out}`);
  say(`# bench/compare ${new Date().toISOString()} — ${describeMachine()}`);
  say(
    `# ${durationMs} ms + ${warmupMs} ms warm-up per cell, ${repeats} interleaved repeat(s); NODE_OPTIONS for ours: ${nodeOptions || '(none)'}, MALLOC_ARENA_MAX: ${mallocArenaMax || '(unset)'}; plugin args: ${pluginArgs.join(' ') || '(defaults)'}`,
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

  const cell = (plugin: string, op: string, c: number) => {
    const kvs = runs.filter((r) => r.plugin === plugin && r.op === op && r.c === c).map((r) => r.kv);
    const n = (k: string): number[] => kvs.map((kv) => Number(kv[k]));
    return {
      ops_per_s: round(median(n('ops_per_s'))),
      p50_us: median(n('p50_us')),
      p99_us: median(n('p99_us')),
      errors: n('errors').reduce((a, b) => a + b, 0),
      cpu_us_per_op: round(median(n('plugin_cpu_us_per_op'))),
      rss_kb: Math.max(...n('plugin_rss_kb')),
      other_cpu_cores: round(median(n('other_cpu_cores')), 2),
    };
  };
  type Cell = ReturnType<typeof cell>;
  const results: Array<{ op: string; c: number; ours: Cell; go: Cell; ratio: number; p99_ratio: number }> =
    [];
  const rows: Array<Array<string | number>> = [];
  for (const op of ops) {
    for (const c of concs) {
      // --repeats 0 (the real-cadence phase alone): no load cells, so no load rows or targets.
      if (!runs.some((x) => x.op === op && x.c === c)) continue;
      const a = cell('ours', op, c);
      const b = cell('go', op, c);
      const r = { op, c, ours: a, go: b, ratio: a.ops_per_s / b.ops_per_s, p99_ratio: a.p99_us / b.p99_us };
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

  // ---- targets (issue 16) ------------------------------------------------------------------
  const at16 = (op: string) => results.find((r) => r.op === op && r.c === 16);
  const checks: Array<[string, string, boolean | undefined]> = [];
  for (const op of ['decrypt', 'encrypt']) {
    const r = at16(op);
    checks.push([
      `${op} c=16 ops/s ≥ ${TARGET.ratio}× Go`,
      r ? fmtRatio(r.ratio) : 'not run',
      r && r.ratio >= TARGET.ratio,
    ]);
    checks.push([
      `${op} c=16 p99 ≤ ${TARGET.p99}× Go`,
      r ? fmtRatio(r.p99_ratio) : 'not run',
      r && r.p99_ratio <= TARGET.p99,
    ]);
  }
  for (const c of concs) {
    const d = results.find((r) => r.op === 'decrypt' && r.c === c);
    const s = results.find((r) => r.op === 'status' && r.c === c);
    const x = d && s ? d.ours.cpu_us_per_op / s.ours.cpu_us_per_op : Number.NaN;
    checks.push([
      `Decrypt CPU/op within 15% of Status (c=${c})`,
      d && s ? `${d.ours.cpu_us_per_op} vs ${s.ours.cpu_us_per_op} µs = ${fmtRatio(x)}` : 'not run',
      d && s ? x <= TARGET.cpuVsStatus : undefined,
    ]);
  }
  const rssLoad = results.length ? Math.max(...results.map((r) => r.ours.rss_kb)) * 1024 : Number.NaN;
  checks.push([
    `RSS under saturation ≤ ${TARGET.rssLoadMB} MB`,
    results.length ? `${(rssLoad / MB).toFixed(1)} MB` : 'not run',
    results.length ? rssLoad <= TARGET.rssLoadMB * MB : undefined,
  ]);
  const oc = cadences.find((c) => c.plugin === 'ours');
  checks.push([
    `RSS at the real cadence ≤ ${TARGET.rssCadenceMB} MB`,
    oc ? `peak ${((oc.rss_peak_kb * 1024) / MB).toFixed(1)} MB` : 'not run',
    oc ? oc.rss_peak_kb * 1024 <= TARGET.rssCadenceMB * MB : undefined,
  ]);
  say();
  say(
    table(
      ['target', 'measured', 'met?'],
      checks.map(([t, m, ok]) => [t, m, ok === undefined ? '-' : ok ? 'yes' : 'NO']),
    ),
  );
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
    results,
    cadence: cadences,
    targets: checks.map(([target, measured, met]) => ({ target, measured, met })),
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
