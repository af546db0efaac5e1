/**
 * Census throughput and memory: a real etcd (loopback, temp dir) filled with values written as
 * kube-apiserver writes them (KMS v2 through a real Envelope over a local key file, identity and
 * aescbc), then `k8s-kms-plugin census` (dist/) run as a user runs it, under /usr/bin/time for
 * peak RSS. Repeated at two sizes so the memory bound shows (peak RSS should not grow with N).
 *
 *   npx tsx bench/census.ts [--sizes 10000,100000] [--repeats 3] [--page-size 500] [--value-bytes 400]
 *                           [--max-old-space MB]   (run census with a capped V8 heap: proves the bound)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { keygen } from '../src/cli/keygen.js';
import { aescbcValue, identityValue, KmsV2Writer } from '../test/support/apiserver-values.js';
import { startEtcd } from '../test/support/etcd.js';
import { Args } from './lib/args.js';
import { describeMachine, loadAvg } from './lib/machine.js';
import { CLI, tempDir } from './lib/procs.js';
import { benchLine, say, table } from './lib/report.js';
import { median } from './lib/stats.js';

const args = new Args();
if (args.help) {
  say('npx tsx bench/census.ts [--sizes 10000,100000] [--repeats 3] [--page-size 500] [--value-bytes 400]');
  process.exit(0);
}
const sizes = args.list('sizes', '10000,100000').map(Number);
const repeats = args.number('repeats', 3);
const pageSize = args.number('page-size', 500);
const valueBytes = args.number('value-bytes', 400);
const maxOldSpace = args.number('max-old-space', 0);

/** Writes `n` objects: 80 % KMS v2 secrets, 10 % identity configmaps, 10 % aescbc configmaps. */
async function fill(
  etcd: Awaited<ReturnType<typeof startEtcd>>,
  writer: KmsV2Writer,
  from: number,
  to: number,
) {
  const c = etcd.client();
  const aesKey = randomBytes(32);
  const object = (i: number): Buffer =>
    Buffer.concat([identityValue(`o${i}`), randomBytes(Math.max(0, valueBytes - 60))]);
  try {
    const batch = 100;
    const inflight: Array<Promise<unknown>> = [];
    for (let start = from; start < to; start += batch) {
      const success = [];
      for (let i = start; i < Math.min(to, start + batch); i++) {
        const r = i % 10;
        const key = r < 8 ? `/registry/secrets/ns${i % 50}/s${i}` : `/registry/configmaps/ns${i % 50}/c${i}`;
        const value =
          r < 8 ? writer.value(key, object(i)) : r === 8 ? object(i) : aescbcValue('key1', aesKey, object(i));
        success.push({ request_put: { key: Buffer.from(key), value } });
      }
      inflight.push(c.kv.txn({ success }));
      if (inflight.length >= 8) await inflight.shift();
    }
    await Promise.all(inflight);
  } finally {
    c.close();
  }
}

interface Run {
  wallS: number;
  objectsPerS: number;
  maxRssMiB: number;
  total: number;
}

function runCensus(endpoint: string): Run {
  const r = spawnSync(
    '/usr/bin/time',
    [
      '-f',
      'TIME %M %e',
      process.execPath,
      ...(maxOldSpace > 0 ? [`--max-old-space-size=${maxOldSpace}`] : []),
      CLI,
      'census',
      '--etcd-endpoints',
      endpoint,
      '--resource',
      'secrets,configmaps',
      '--page-size',
      String(pageSize),
      '--json',
    ],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  if (r.status !== 0) throw new Error(`census failed (${r.status}): ${r.stderr}`);
  const m = /TIME (\d+) ([\d.]+)/.exec(r.stderr);
  if (!m) throw new Error(`no /usr/bin/time line: ${r.stderr}`);
  const report = JSON.parse(r.stdout) as { total: number; objectsPerSecond: number };
  return {
    wallS: Number(m[2]),
    objectsPerS: report.objectsPerSecond,
    maxRssMiB: Number(m[1]) / 1024,
    total: report.total,
  };
}

async function main(): Promise<void> {
  execFileSync('test', ['-f', CLI]);
  say(describeMachine());
  say(`load average at start: ${loadAvg()}`);
  if (maxOldSpace > 0) say(`census runs with --max-old-space-size=${maxOldSpace}`);
  const dir = tempDir('kkp-bench-census-');
  const keyFile = join(dir.path, 'kek.json');
  keygen(keyFile);
  const etcd = await startEtcd();
  const writer = await KmsV2Writer.create(keyFile);
  const rows: Array<Array<string | number>> = [];
  try {
    let have = 0;
    for (const n of [...sizes].sort((a, b) => a - b)) {
      const t = performance.now();
      await fill(etcd, writer, have, n);
      say(`filled ${n} objects (+${n - have} in ${((performance.now() - t) / 1000).toFixed(1)} s)`);
      have = n;
      const runs: Run[] = [];
      for (let i = 0; i < repeats; i++) {
        const run = runCensus(etcd.endpoint);
        if (run.total !== n) throw new Error(`census counted ${run.total}, expected ${n}`);
        runs.push(run);
        benchLine('census', { objects: n, pageSize, valueBytes, maxOldSpace, ...run });
      }
      rows.push([
        n,
        pageSize,
        `${median(runs.map((r) => r.objectsPerS)).toFixed(0)} (${Math.min(...runs.map((r) => r.objectsPerS))}–${Math.max(...runs.map((r) => r.objectsPerS))})`,
        median(runs.map((r) => r.wallS)).toFixed(2),
        `${median(runs.map((r) => r.maxRssMiB)).toFixed(1)} (max ${Math.max(...runs.map((r) => r.maxRssMiB)).toFixed(1)})`,
      ]);
    }
  } finally {
    await writer.close();
    await etcd.stop();
    dir.cleanup();
  }
  say(`load average at end: ${loadAvg()}`);
  say(
    table(
      ['objects', 'page size', 'objects/s, median (min–max)', 'wall s (process)', 'peak RSS MiB, median'],
      rows,
    ),
  );
}

await main();
