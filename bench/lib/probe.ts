/** Runs kmsv2probe and parses its machine-readable `load ...` / `coldstart ...` lines. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { BIN } from './procs.js';

export type KV = Record<string, string | number>;

/** `key=value key=value` → object (numbers where they parse). */
export function parseKv(line: string): KV {
  const out: KV = {};
  for (const part of line.trim().split(/\s+/).slice(1)) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const v = part.slice(i + 1);
    const n = Number(v);
    out[part.slice(0, i)] = v !== '' && Number.isFinite(n) ? n : v;
  }
  return out;
}

export interface ProbeRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Parsed lines that start with `prefix` (load/coldstart). */
  lines: KV[];
}

export function runProbe(args: string[], prefix: 'load' | 'coldstart'): Promise<ProbeRun> {
  return new Promise((res, rej) => {
    const p = spawn(join(BIN, 'kmsv2probe'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', rej);
    p.on('exit', (code) =>
      res({
        code,
        stdout,
        stderr,
        lines: stdout
          .split('\n')
          .filter((l) => l.startsWith(`${prefix} `))
          .map(parseKv),
      }),
    );
  });
}
