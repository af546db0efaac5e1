/**
 * Cold start: N distinct seeds (default 10,000) encrypted by plugin A through the AWS KMS fake
 * (latencyMs 20) with `--dek-max-uses 1000`, so they spread over about N/1000 DEKs; then a FRESH
 * plugin process B (one per concurrency) decrypts all of them: wall time, decrypt percentiles and
 * the number of remote unwraps (the fake's Decrypt count). For comparison, `kmsv2probe coldstart`
 * against gorefplugin (no remote KMS), and against our plugin with the local provider (the same
 * method as for Go: the probe encrypts through the same process first).
 *
 *   npx tsx bench/coldstart.ts [--seeds 10000] [--concurrency 1,10] [--latency-ms 20]
 *                              [--dek-max-uses 1000] [--setup-concurrency 16] [--no-local]
 *
 * Timed part, as kmsv2probe does it: new connection, Status, one Encrypt, then Decrypt all N with
 * C workers, each result checked against its seed.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Args } from './lib/args.js';
import { startAwsFake } from './lib/aws.js';
import { client, decryptCheck, encryptSeed, pool, type Sealed } from './lib/client.js';
import { describeMachine, loadAvg, machineInfo } from './lib/machine.js';
import { runProbe, type KV } from './lib/probe.js';
import { requireTools, runCli, startGo, startOurs, tempDir } from './lib/procs.js';
import { benchLine, say, table } from './lib/report.js';
import { fmtRatio, fmtUs, round, summarize, type Summary } from './lib/stats.js';

const args = new Args();
if (args.help) {
  say(
    'usage: tsx bench/coldstart.ts [--seeds 10000] [--concurrency 1,10] [--latency-ms 20] [--dek-max-uses 1000] [--setup-concurrency 16] [--no-local]',
  );
  process.exit(0);
}
const seeds = args.number('seeds', 10_000);
const concs = args.list('concurrency', '1,10').map(Number);
const latencyMs = args.number('latency-ms', 20);
const dekMaxUses = args.number('dek-max-uses', 1000);
const setupConc = args.number('setup-concurrency', 16);

interface OursPass {
  c: number;
  loadavg: string;
  b_bound_ms: number;
  b_ready_ms: number;
  startup_calls: Record<string, number>;
  connect_status_ms: number;
  prime_ms: number;
  decrypt_ms: number;
  total_ms: number;
  remote_unwraps: number;
  other_remote_calls: Record<string, number>;
  errors: number;
  p50_us: number;
  p90_us: number;
  p99_us: number;
  max_us: number;
}

const OPS = ['DescribeKey', 'ListKeyRotations', 'Encrypt', 'Decrypt'];

interface Timed {
  connect_status_ms: number;
  prime_ms: number;
  decrypt_ms: number;
  total_ms: number;
  errors: number;
  summary: Summary;
}

/** New connection, Status, one Encrypt, then Decrypt all with `c` workers, each result checked. */
async function timedPass(socket: string, all: Sealed[], c: number): Promise<Timed> {
  const cb = client(socket);
  try {
    const tStart = performance.now();
    const st = await cb.status(3000);
    if (st.healthz !== 'ok') throw new Error(`not healthy: ${st.healthz}`);
    const tStatus = performance.now();
    await encryptSeed(cb);
    const tPrime = performance.now();
    let errors = 0;
    const lat = await pool(all.length, c, (i) =>
      decryptCheck(cb, all[i]).catch(() => {
        errors += 1;
        return Number.NaN;
      }),
    );
    const tEnd = performance.now();
    return {
      connect_status_ms: round(tStatus - tStart, 2),
      prime_ms: round(tPrime - tStatus, 2),
      decrypt_ms: round(tEnd - tPrime),
      total_ms: round(tEnd - tStart),
      errors,
      summary: summarize(lat.filter(Number.isFinite)),
    };
  } finally {
    cb.close();
  }
}

async function main(): Promise<void> {
  requireTools();
  say(`# bench/coldstart ${new Date().toISOString()} — ${describeMachine()}`);
  say(
    `# ${seeds} seeds, AWS fake latency ${latencyMs} ms, --dek-max-uses ${dekMaxUses}, concurrency ${concs.join(',')}`,
  );
  const dir = tempDir();
  const aws = await startAwsFake(latencyMs);
  const flags = [...aws.args, '--dek-max-uses', String(dekMaxUses)];
  const counts = (): Record<string, number> => Object.fromEntries(OPS.map((op) => [op, aws.fake.count(op)]));
  let sealed: Sealed[] = [];
  const passes: OursPass[] = [];
  let setup: Record<string, unknown> = {};
  try {
    // ---- set-up: plugin A encrypts the seeds -------------------------------------------
    const a = await startOurs(join(dir.path, 'a.sock'), flags, aws.env, 'A');
    const ca = client(a.socket);
    const t0 = performance.now();
    aws.fake.reset();
    sealed = await pool(seeds, setupConc, () => encryptSeed(ca));
    const keyIds = new Set(sealed.map((s) => s.keyId));
    setup = {
      encrypt_ms: round(performance.now() - t0),
      dek_wraps: aws.fake.count('Encrypt'),
      key_ids: keyIds.size,
      calls: counts(),
    };
    ca.close();
    await a.stop();
    say(
      `  set-up: ${seeds} Encrypts in ${setup.encrypt_ms} ms through plugin A; remote wraps (DEKs) ${String(setup.dek_wraps)}`,
    );

    // ---- timed: a fresh plugin B per concurrency ---------------------------------------
    for (const c of concs) {
      aws.fake.reset();
      const loadavg = loadAvg();
      const b = await startOurs(join(dir.path, `b${c}.sock`), flags, aws.env, `B(c=${c})`);
      const startupCalls = counts();
      aws.fake.reset();
      const t = await timedPass(b.socket, sealed, c);
      const calls = counts();
      await b.stop();
      const s = t.summary;
      const errors = t.errors;
      const pass: OursPass = {
        c,
        loadavg,
        b_bound_ms: round(b.boundMs),
        b_ready_ms: round(b.readyMs),
        startup_calls: startupCalls,
        connect_status_ms: t.connect_status_ms,
        prime_ms: t.prime_ms,
        decrypt_ms: t.decrypt_ms,
        total_ms: t.total_ms,
        remote_unwraps: calls.Decrypt,
        other_remote_calls: {
          DescribeKey: calls.DescribeKey,
          ListKeyRotations: calls.ListKeyRotations,
          Encrypt: calls.Encrypt,
        },
        errors,
        p50_us: Math.round(s.p50),
        p90_us: Math.round(s.p90),
        p99_us: Math.round(s.p99),
        max_us: Math.round(s.max),
      };
      passes.push(pass);
      say(
        `  ours/aws fresh B c=${c}: total ${pass.total_ms} ms (decrypt ${pass.decrypt_ms} ms), p50 ${fmtUs(pass.p50_us)} p99 ${fmtUs(pass.p99_us)} max ${fmtUs(pass.max_us)}, remote unwraps ${pass.remote_unwraps}, errors ${errors}, load ${loadavg}`,
      );
    }
  } finally {
    await aws.fake.close();
  }

  // ---- kmsv2probe coldstart: Go baseline, and ours with the local provider -----------------
  const probeCold = async (socket: string, pid: number): Promise<KV[]> => {
    const r = await runProbe(
      [
        'coldstart',
        '--socket',
        socket,
        '--seeds',
        String(seeds),
        '--concurrency',
        concs.join(','),
        '--plugin-pid',
        String(pid),
      ],
      'coldstart',
    );
    if (r.lines.length === 0)
      throw new Error(`kmsv2probe coldstart: no result (exit ${r.code}): ${r.stdout}${r.stderr}`);
    return r.lines;
  };
  const goLoad = loadAvg();
  const go = await startGo(join(dir.path, 'go.sock'));
  let goLines: KV[];
  const goNode: Array<{
    c: number;
    total_ms: number;
    decrypt_ms: number;
    p50_us: number;
    p99_us: number;
    errors: number;
  }> = [];
  try {
    goLines = await probeCold(go.socket, go.pid);
    // The same Node client as for B, against Go: separates client cost from plugin cost.
    const cg = client(go.socket);
    const goSealed = await pool(seeds, setupConc, () => encryptSeed(cg));
    cg.close();
    for (const c of concs) {
      const t = await timedPass(go.socket, goSealed, c);
      goNode.push({
        c,
        total_ms: t.total_ms,
        decrypt_ms: t.decrypt_ms,
        p50_us: Math.round(t.summary.p50),
        p99_us: Math.round(t.summary.p99),
        errors: t.errors,
      });
    }
  } finally {
    await go.stop();
  }
  let localLines: KV[] = [];
  if (!args.flag('no-local')) {
    const keyFile = join(dir.path, 'kek.json');
    await runCli(['keygen', '--out', keyFile]);
    const ours = await startOurs(join(dir.path, 'local.sock'), [
      '--provider',
      'local',
      '--local-key-file',
      keyFile,
    ]);
    try {
      localLines = await probeCold(ours.socket, ours.pid);
    } finally {
      await ours.stop();
    }
  }
  dir.cleanup();

  const byC = (lines: KV[], c: number): KV | undefined => lines.find((l) => Number(l.c) === c);
  const rows: Array<Array<string | number>> = [];
  const ratios: Array<Record<string, number>> = [];
  for (const p of passes) {
    const g = byC(goLines, p.c);
    const l = byC(localLines, p.c);
    const gTotal = Number(g?.total_ms);
    rows.push([
      `ours, aws fake ${latencyMs} ms, fresh process`,
      p.c,
      `${p.total_ms} ms`,
      `${p.decrypt_ms} ms`,
      fmtUs(p.p50_us),
      fmtUs(p.p99_us),
      p.remote_unwraps,
      p.errors,
      fmtRatio(p.total_ms / gTotal),
    ]);
    if (l)
      rows.push([
        `ours, local, kmsv2probe coldstart`,
        p.c,
        `${l.total_ms} ms`,
        `${l.decrypt_ms} ms`,
        fmtUs(Number(l.p50_us)),
        fmtUs(Number(l.p99_us)),
        '-',
        Number(l.errors),
        fmtRatio(Number(l.total_ms) / gTotal),
      ]);
    const gn = goNode.find((x) => x.c === p.c);
    if (gn)
      rows.push([
        `gorefplugin, same Node client as B`,
        p.c,
        `${gn.total_ms} ms`,
        `${gn.decrypt_ms} ms`,
        fmtUs(gn.p50_us),
        fmtUs(gn.p99_us),
        '-',
        gn.errors,
        fmtRatio(gn.total_ms / gTotal),
      ]);
    if (g)
      rows.push([
        `gorefplugin, kmsv2probe coldstart`,
        p.c,
        `${g.total_ms} ms`,
        `${g.decrypt_ms} ms`,
        fmtUs(Number(g.p50_us)),
        fmtUs(Number(g.p99_us)),
        '-',
        Number(g.errors),
        '',
      ]);
    ratios.push({
      c: p.c,
      aws_fresh_over_go: round(p.total_ms / gTotal, 2),
      ...(gn ? { aws_fresh_over_go_same_client: round(p.total_ms / gn.total_ms, 2) } : {}),
      ...(l ? { local_over_go: round(Number(l.total_ms) / gTotal, 2) } : {}),
    });
  }
  say();
  say(
    table(
      ['plugin', 'c', 'total', 'decrypt all', 'p50', 'p99', 'remote unwraps', 'errors', 'total vs Go'],
      rows,
    ),
  );
  say();
  benchLine('coldstart', {
    at: new Date().toISOString(),
    machine: machineInfo(),
    loadavg_end: loadAvg(),
    loadavg_go: goLoad,
    seeds,
    latency_ms: latencyMs,
    dek_max_uses: dekMaxUses,
    setup,
    ours_aws_fresh: passes,
    go: goLines,
    go_node_client: goNode,
    ours_local_probe: localLines,
    ratios,
  });
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
