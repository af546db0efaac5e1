/**
 * Runs the real plugin (`node dist/cli/main.js ...`) as a child process for integration and
 * conformance tests. `npm test` builds dist/ first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { KmsClient } from '../../src/server/client.js';

export const CLI = resolve(process.cwd(), 'dist/cli/main.js');

export interface SpawnedPlugin {
  endpoint: string;
  proc: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Sends `signal` and resolves with the exit code (or signal name). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | string | null>;
}

export function requireBuild(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` (npm test does it)`);
}

export function runCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 20_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  requireBuild();
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => {
      p.kill('SIGKILL');
      rej(new Error(`CLI ${args.join(' ')} timed out; stderr: ${stderr}`));
    }, timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(t);
      res({ code, stdout, stderr });
    });
  });
}

export async function spawnPlugin(options: {
  args: string[];
  endpoint: string;
  env?: NodeJS.ProcessEnv;
  readyTimeoutMs?: number;
  /** Wait until Status answers OK (default) or only until the socket accepts. */
  waitFor?: 'status-ok' | 'none';
}): Promise<SpawnedPlugin> {
  requireBuild();
  const proc = spawn(process.execPath, [CLI, 'serve', ...options.args], {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string | null>((r) => proc.on('exit', (code, sig) => r(code ?? sig)));
  const plugin: SpawnedPlugin = {
    endpoint: options.endpoint,
    proc,
    output: () => out,
    stop: async (signal = 'SIGTERM', timeoutMs = 15_000) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode ?? proc.signalCode;
      proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
  };
  if ((options.waitFor ?? 'status-ok') === 'none') return plugin;
  const deadline = Date.now() + (options.readyTimeoutMs ?? 15_000);
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`plugin exited with ${proc.exitCode}: ${out}`);
    // A fresh channel per attempt: a channel that tried before the socket existed would sit in
    // grpc's reconnect back-off (about 1 s) instead of noticing the socket at once.
    const client = new KmsClient(options.endpoint, { waitForReady: false });
    try {
      const s = await client.status(500);
      if (s.healthz === 'ok') return plugin;
    } catch {
      // not up yet
    } finally {
      client.close();
    }
    if (Date.now() > deadline) {
      await plugin.stop('SIGKILL');
      throw new Error(`plugin not ready within ${options.readyTimeoutMs ?? 15_000} ms: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A fresh temp dir (short path: socket paths are limited to 107 bytes). */
export function tempDir(prefix = 'kkp-'): { path: string; cleanup(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}
