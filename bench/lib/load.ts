/** One `kmsv2probe load` cell against a running plugin, with its CPU and RSS (--plugin-pid). */
import { runProbe, type KV } from './probe.js';
import type { Plugin } from './procs.js';

export async function loadRun(
  p: Plugin,
  op: string,
  c: number,
  durationMs: number,
  warmupMs: number,
): Promise<KV> {
  const r = await runProbe(
    [
      'load',
      '--socket',
      p.socket,
      '--op',
      op,
      '--concurrency',
      String(c),
      '--duration',
      `${durationMs}ms`,
      '--warmup',
      `${warmupMs}ms`,
      '--plugin-pid',
      String(p.pid),
    ],
    'load',
  );
  const kv = r.lines[r.lines.length - 1];
  if (!kv) throw new Error(`kmsv2probe load gave no result line (exit ${r.code}): ${r.stdout}\n${r.stderr}`);
  return kv;
}
