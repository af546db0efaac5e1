/**
 * Starting and stopping the plugins under test as child processes: ours (`node dist/cli/main.js
 * serve ...`), the Go baseline (`gorefplugin`) and the grpc-js floor (`node bench/grpc-floor.mjs`),
 * with the times to socket bound and to ready.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { KmsClient } from '../../src/server/client.js';

export const BIN = process.env.KMSV2PROBE_BIN ?? '/opt/kmsv2probe/bin';
export const CLI = resolve(process.cwd(), 'dist/cli/main.js');
/** The do-nothing grpc-js server, plain JS on the built codecs (dist/server/proto.js). */
export const FLOOR = fileURLToPath(new URL('../grpc-floor.mjs', import.meta.url));

export interface Plugin {
  name: string;
  pid: number;
  socket: string;
  proc: ChildProcess;
  /** ms from spawn() to the socket accepting connections. */
  boundMs: number;
  /** ms from spawn() to Status answering healthz "ok". */
  readyMs: number;
  output(): string;
  stop(): Promise<void>;
}

export function tempDir(prefix = 'kkp-bench-'): { path: string; cleanup(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

export function requireTools(): void {
  if (!existsSync(CLI))
    throw new Error(`${CLI} is missing: run npx tsc -p tsconfig.build.json && node scripts/postbuild.mjs`);
  if (!existsSync(join(BIN, 'kmsv2probe'))) throw new Error(`${BIN}/kmsv2probe is missing (KMSV2PROBE_BIN)`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function canConnect(path: string): Promise<boolean> {
  return new Promise((res) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
}

async function statusOk(socket: string): Promise<boolean> {
  const client = new KmsClient(`unix://${socket}`, { waitForReady: false });
  try {
    return (await client.status(500)).healthz === 'ok';
  } catch {
    return false;
  } finally {
    client.close();
  }
}

/**
 * Where a started process's stdout and stderr go.
 * - `file`: a file (StartOptions.logFile, default next to the socket); nothing for us to read.
 * - `pipe`: a pipe this process drains, keeping the last 4000 characters, as containerd or
 *   journald drain a deployed plugin's stderr. On this VM's ext4 the file's writes cost the plugin
 *   2–20 µs per logged RPC (the kernel's work, charged to the writer; docs/benchmarks.md), which a
 *   deployed plugin does not pay.
 */
export type LogSink = 'file' | 'pipe';

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  socket: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Default `file`. */
  logs?: LogSink;
  /** With `logs: 'file'`: the file (default: next to the socket). */
  logFile?: string;
}

const TAIL_CHARS = 4000;

export async function startProcess(o: StartOptions): Promise<Plugin> {
  const piped = o.logs === 'pipe';
  const logFile = o.logFile ?? `${o.socket}.log`;
  const fd = piped ? undefined : openSync(logFile, 'a');
  const t0 = performance.now();
  const env: NodeJS.ProcessEnv = { ...process.env, ...o.env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k]; // undefined = unset
  const proc = spawn(o.command, o.args, {
    env,
    stdio: fd === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', fd, fd],
  });
  if (fd !== undefined) closeSync(fd);
  let kept = '';
  for (const stream of [proc.stdout, proc.stderr]) {
    stream?.setEncoding('utf8');
    stream?.on('data', (text: string) => {
      kept = kept.length + text.length > TAIL_CHARS ? (kept + text).slice(-TAIL_CHARS) : kept + text;
    });
  }
  const tail = (): string => {
    if (piped) return kept;
    try {
      const text = readFileSync(logFile, 'utf8');
      return text.length > TAIL_CHARS ? text.slice(-TAIL_CHARS) : text;
    } catch {
      return '';
    }
  };
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const stop = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  };
  const deadline = Date.now() + (o.timeoutMs ?? 20_000);
  let boundMs = Number.NaN;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${o.name} exited with ${proc.exitCode}: ${tail()}`);
    if (existsSync(o.socket) && (await canConnect(o.socket))) {
      boundMs = performance.now() - t0;
      break;
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${o.name}: socket not bound in time: ${tail()}`);
    }
    await sleep(1);
  }
  let readyMs = Number.NaN;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${o.name} exited with ${proc.exitCode}: ${tail()}`);
    if (await statusOk(o.socket)) {
      readyMs = performance.now() - t0;
      break;
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${o.name}: not ready in time: ${tail()}`);
    }
    await sleep(2);
  }
  if (proc.pid === undefined) throw new Error(`${o.name}: no pid`);
  return { name: o.name, pid: proc.pid, socket: o.socket, proc, boundMs, readyMs, output: tail, stop };
}

/** Our plugin: `node dist/cli/main.js serve --listen unix://SOCKET --health-addr "" ...args`. */
export function startOurs(
  socket: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  name = 'ours',
  logs: LogSink = 'file',
): Promise<Plugin> {
  return startProcess({
    name,
    command: process.execPath,
    args: [CLI, 'serve', '--listen', `unix://${socket}`, '--health-addr', '', ...args],
    socket,
    env,
    logs,
  });
}

export function startGo(socket: string, logs: LogSink = 'file'): Promise<Plugin> {
  return startProcess({
    name: 'go',
    command: join(BIN, 'gorefplugin'),
    args: ['--socket', socket],
    socket,
    logs,
  });
}

/**
 * The grpc-js floor: `node bench/grpc-floor.mjs SOCKET` (no tsx loader in the process), with the
 * plugin's built codecs. Pass it our plugin's env (NODE_OPTIONS, MALLOC_ARENA_MAX) to compare like
 * with like.
 */
export function startFloor(
  socket: string,
  env: NodeJS.ProcessEnv = {},
  name = 'floor',
  logs: LogSink = 'file',
): Promise<Plugin> {
  return startProcess({ name, command: process.execPath, args: [FLOOR, socket], socket, env, logs });
}

/** Resident set size in KiB (VmRSS), or NaN once the process is gone. */
export function rssKb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Runs `node dist/cli/main.js <args>` to completion. */
export function runCli(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code) => res({ code, out }));
  });
}
