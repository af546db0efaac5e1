/**
 * Soak (not in CI): mixed Status/Encrypt/Decrypt load against our plugin (local provider) with
 * periodic DEK rotations (--dek-max-uses) and KEK rotations (`node dist/cli/main.js rotate
 * --local-key-file F`), for a fixed time; it stops by itself.
 *
 *   npx tsx bench/soak.ts [--duration 30m] [--window 30s] [--concurrency 8]
 *                         [--mix decrypt=8,encrypt=1,status=1] [--dek-max-uses 5000]
 *                         [--kek-rotate-every 5m] [--probe-interval 5s] [--pool 2000]
 *
 * Per window: RSS (end and max), ops and errors by code, p50/p99 per op, key_id changes, DEK and
 * KEK rotations (from the plugin's /metrics), and whether every ciphertext written in the first
 * window (under the first KEK version and DEK) still decrypts. Decrypts pick at random from a
 * pool of ciphertexts written over the whole run, so they cross DEK and KEK rotations, and every
 * plaintext is checked. A `BENCH soak {json}` line ends the run; the exit code is 1 on any error.
 */
import { createServer } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Args } from './lib/args.js';
import { client, decryptCheck, encryptSeed, errorCode, pool, type Sealed } from './lib/client.js';
import { describeMachine, loadAvg, machineInfo } from './lib/machine.js';
import { requireTools, rssKb, runCli, startOurs, tempDir } from './lib/procs.js';
import { benchLine, say, table } from './lib/report.js';
import { fmtUs, summarize } from './lib/stats.js';

const args = new Args();
if (args.help) {
  say(
    'usage: tsx bench/soak.ts [--duration 30m] [--window 30s] [--concurrency 8] [--mix decrypt=8,encrypt=1,status=1] [--dek-max-uses 5000] [--kek-rotate-every 5m] [--probe-interval 5s] [--pool 2000]',
  );
  process.exit(0);
}
const durationMs = args.durationMs('duration', '30m');
const windowMs = args.durationMs('window', '30s');
const concurrency = args.number('concurrency', 8);
const dekMaxUses = args.number('dek-max-uses', 5000);
const kekEveryMs = args.durationMs(
  'kek-rotate-every',
  durationMs <= 5 * 60_000 ? `${Math.max(20_000, Math.round(durationMs / 3))}ms` : '5m',
);
const probeInterval = args.string('probe-interval', '5s');
const poolSize = args.number('pool', 2000);
const mix = Object.fromEntries(
  args.list('mix', 'decrypt=8,encrypt=1,status=1').map((kv) => {
    const [k, v] = kv.split('=');
    if (!['decrypt', 'encrypt', 'status'].includes(k)) throw new Error(`--mix: unknown op ${k}`);
    return [k, Number(v)];
  }),
) as Record<'decrypt' | 'encrypt' | 'status', number>;

type Op = 'status' | 'encrypt' | 'decrypt';

interface Window {
  index: number;
  lat: Record<Op, number[]>;
  errors: Record<string, number>;
  keyIds: string[];
  rssMaxKb: number;
  kekRotations: number;
}

function newWindow(index: number): Window {
  return {
    index,
    lat: { status: [], encrypt: [], decrypt: [] },
    errors: {},
    keyIds: [],
    rssMaxKb: 0,
    kekRotations: 0,
  };
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

async function scrape(port: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const line of text.split('\n')) {
      const m =
        /^(kms_plugin_(?:dek_rotations_total|kek_rotations_total|unwraps_coalesced_total))(\{[^}]*\})?\s+(\S+)/.exec(
          line,
        );
      if (m) {
        out[m[1]] = (out[m[1]] ?? 0) + Number(m[3]);
        if (m[2]) out[`${m[1]}${m[2]}`] = Number(m[3]);
      }
    }
  } catch (err) {
    // metrics are a bonus; the run goes on
    console.error(`metrics scrape failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  return out;
}

function pickOp(): Op {
  const total = mix.decrypt + mix.encrypt + mix.status;
  let r = Math.random() * total;
  for (const op of ['decrypt', 'encrypt', 'status'] as const) {
    r -= mix[op];
    if (r < 0) return op;
  }
  return 'decrypt';
}

async function main(): Promise<void> {
  requireTools();
  const dir = tempDir();
  const keyFile = join(dir.path, 'kek.json');
  const kg = await runCli(['keygen', '--out', keyFile]);
  if (kg.code !== 0) throw new Error(`keygen failed: ${kg.out}`);
  const port = await freePort();
  say(`# bench/soak ${new Date().toISOString()} — ${describeMachine()}`);
  say(
    `# ${durationMs / 1000} s in ${windowMs / 1000} s windows, c=${concurrency}, mix ${JSON.stringify(mix)}, --dek-max-uses ${dekMaxUses}, KEK rotation every ${kekEveryMs / 1000} s, probe interval ${probeInterval}`,
  );
  const plugin = await startOurs(join(dir.path, 'soak.sock'), [
    '--provider',
    'local',
    '--local-key-file',
    keyFile,
    '--dek-max-uses',
    String(dekMaxUses),
    '--probe-interval',
    probeInterval,
    '--health-addr',
    `127.0.0.1:${port}`,
  ]);
  const c = client(plugin.socket);
  const first = await pool(100, 8, () => encryptSeed(c)); // written under the first KEK and DEK
  const ring: Sealed[] = [...first];
  let lastKeyId = (await c.status()).key_id;
  const allKeyIds = [lastKeyId];
  let w = newWindow(0);
  const t0 = Date.now();
  const end = t0 + durationMs;
  let stopping = false;
  let errorsTotal = 0;
  const kekRotations: Array<{ at: number; adoptedAfterMs?: number; ok: boolean }> = [];
  let pendingRotation: { at: number; index: number } | undefined;

  const note = (code: string): void => {
    w.errors[code] = (w.errors[code] ?? 0) + 1;
    errorsTotal += 1;
  };
  const seeKeyId = (id: string): void => {
    if (id === lastKeyId) return;
    lastKeyId = id;
    if (!allKeyIds.includes(id)) allKeyIds.push(id);
    w.keyIds.push(id);
    if (pendingRotation) {
      kekRotations[pendingRotation.index].adoptedAfterMs = Date.now() - pendingRotation.at;
      pendingRotation = undefined;
    }
  };

  const worker = async (): Promise<void> => {
    while (!stopping) {
      const op = pickOp();
      const t = performance.now();
      try {
        if (op === 'status') {
          const s = await c.status();
          if (s.healthz !== 'ok') note('StatusUnhealthy');
          seeKeyId(s.key_id);
          w.lat.status.push((performance.now() - t) * 1000);
        } else if (op === 'encrypt') {
          const s = await encryptSeed(c, 3000);
          w.lat.encrypt.push((performance.now() - t) * 1000);
          if (!allKeyIds.includes(s.keyId)) seeKeyId(s.keyId); // a new key_id seen first on Encrypt
          if (ring.length < poolSize) ring.push(s);
          else ring[first.length + Math.floor(Math.random() * (poolSize - first.length))] = s;
        } else {
          const s = ring[Math.floor(Math.random() * ring.length)];
          w.lat.decrypt.push(await decryptCheck(c, s, 3000));
        }
      } catch (err) {
        note(err instanceof Error && err.message === 'WrongPlaintext' ? 'WrongPlaintext' : errorCode(err));
      }
    }
  };

  const rssTimer = setInterval(() => {
    w.rssMaxKb = Math.max(w.rssMaxKb, rssKb(plugin.pid) || 0);
  }, 1000);
  const kekTimer = setInterval(() => {
    const at = Date.now();
    kekRotations.push({ at, ok: false });
    const index = kekRotations.length - 1;
    void runCli(['rotate', '--local-key-file', keyFile]).then((r) => {
      kekRotations[index].ok = r.code === 0;
      if (r.code !== 0) note('KekRotateFailed');
      else pendingRotation = { at, index };
      w.kekRotations += 1;
    });
  }, kekEveryMs);

  const rows: Array<Array<string | number>> = [];
  const reports: Array<Record<string, unknown>> = [];
  let metricsBefore = await scrape(port);
  const closeWindow = async (done: Window): Promise<void> => {
    const firstOk = await pool(first.length, 4, (i) =>
      decryptCheck(c, first[i]).then(
        () => true,
        () => false,
      ),
    );
    const firstFailed = firstOk.filter((ok) => !ok).length;
    if (firstFailed) {
      done.errors.FirstWindowCiphertextUnreadable = firstFailed;
      errorsTotal += firstFailed;
    }
    const metrics = await scrape(port);
    const before = metricsBefore;
    const delta = (k: string): number => (metrics[k] ?? 0) - (before[k] ?? 0);
    metricsBefore = metrics;
    const rss = rssKb(plugin.pid);
    const s = {
      status: summarize(done.lat.status),
      encrypt: summarize(done.lat.encrypt),
      decrypt: summarize(done.lat.decrypt),
    };
    const report = {
      window: done.index,
      t_s: Math.round((Date.now() - t0) / 1000),
      loadavg: loadAvg(),
      rss_kb: rss,
      rss_max_kb: Math.max(done.rssMaxKb, rss || 0),
      ops: { status: s.status.count, encrypt: s.encrypt.count, decrypt: s.decrypt.count },
      p50_us: {
        status: Math.round(s.status.p50),
        encrypt: Math.round(s.encrypt.p50),
        decrypt: Math.round(s.decrypt.p50),
      },
      p99_us: {
        status: Math.round(s.status.p99),
        encrypt: Math.round(s.encrypt.p99),
        decrypt: Math.round(s.decrypt.p99),
      },
      errors: done.errors,
      key_id_changes: done.keyIds.length,
      dek_rotations: delta('kms_plugin_dek_rotations_total'),
      kek_rotations_adopted: delta('kms_plugin_kek_rotations_total'),
      kek_rotations_requested: done.kekRotations,
      first_window_ciphertexts_ok: first.length - firstFailed,
    };
    reports.push(report);
    const errText = Object.entries(done.errors)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    rows.push([
      done.index,
      report.t_s,
      `${(rss / 1024).toFixed(1)} / ${(report.rss_max_kb / 1024).toFixed(1)}`,
      `${s.status.count}/${s.encrypt.count}/${s.decrypt.count}`,
      `${fmtUs(s.status.p50)} / ${fmtUs(s.status.p99)}`,
      `${fmtUs(s.encrypt.p50)} / ${fmtUs(s.encrypt.p99)}`,
      `${fmtUs(s.decrypt.p50)} / ${fmtUs(s.decrypt.p99)}`,
      errText || '0',
      report.key_id_changes,
      `${report.dek_rotations} / ${report.kek_rotations_adopted}`,
      `${report.first_window_ciphertexts_ok}/${first.length}`,
      report.loadavg,
    ]);
    say(
      `  window ${done.index} t=${report.t_s}s rss=${(rss / 1024).toFixed(1)}MiB ops s/e/d=${s.status.count}/${s.encrypt.count}/${s.decrypt.count} p99 s/e/d=${fmtUs(s.status.p99)}/${fmtUs(s.encrypt.p99)}/${fmtUs(s.decrypt.p99)} errors=${errText || 0} key_id changes=${report.key_id_changes} dek/kek rotations=${report.dek_rotations}/${report.kek_rotations_adopted} load=${report.loadavg}`,
    );
  };

  const workers = Array.from({ length: concurrency }, worker);
  try {
    while (Date.now() < end) {
      await new Promise((r) => setTimeout(r, Math.min(windowMs, end - Date.now())));
      const done = w;
      w = newWindow(done.index + 1);
      // Measure the closed window while the load goes on into the next one.
      await closeWindow(done);
    }
  } finally {
    stopping = true;
    clearInterval(rssTimer);
    clearInterval(kekTimer);
    await Promise.all(workers);
    c.close();
    await plugin.stop();
    dir.cleanup();
  }

  say();
  say(
    table(
      [
        'win',
        't (s)',
        'RSS end / max (MiB)',
        'ops S/E/D',
        'Status p50 / p99',
        'Encrypt p50 / p99',
        'Decrypt p50 / p99',
        'errors',
        'key_id changes',
        'DEK / KEK rotations',
        'first-window ciphertexts',
        'load',
      ],
      rows,
    ),
  );
  say();
  const adopted = kekRotations
    .filter((r) => r.adoptedAfterMs !== undefined)
    .map((r) => r.adoptedAfterMs as number);
  say(
    `KEK rotations requested ${kekRotations.length}, adopted ${adopted.length} (after ${adopted.map((a) => `${a} ms`).join(', ') || '-'}); distinct key_ids ${allKeyIds.length}; errors ${errorsTotal}`,
  );
  benchLine('soak', {
    at: new Date().toISOString(),
    machine: machineInfo(),
    duration_ms: durationMs,
    window_ms: windowMs,
    concurrency,
    mix,
    dek_max_uses: dekMaxUses,
    kek_rotate_every_ms: kekEveryMs,
    probe_interval: probeInterval,
    errors_total: errorsTotal,
    kek_rotations: kekRotations.map((r) => ({
      at: new Date(r.at).toISOString(),
      ok: r.ok,
      adopted_after_ms: r.adoptedAfterMs,
    })),
    distinct_key_ids: allKeyIds.length,
    windows: reports,
  });
  process.exitCode = errorsTotal > 0 ? 1 : 0;
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
