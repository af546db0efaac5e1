/**
 * bench/lib/procs.ts startProcess: a plugin's output goes to a file, or (`logs: 'pipe'`, what
 * bench:compare uses) through a pipe we drain, keeping only its tail.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { FLOOR, startProcess, tempDir, type LogSink, type Plugin } from '../../../bench/lib/procs.js';

const dir = tempDir('kkp-procs-');
afterAll(() => dir.cleanup());

const PROTO = join(dirname(FLOOR), '..', 'dist', 'server', 'proto.js');

/** The floor's server, after printing `lines` numbered lines of 100 characters on stderr. */
function chattyFloor(socket: string, lines: number): string[] {
  const script = `
    for (let i = 0; i < ${lines}; i++) process.stderr.write(String(i).padStart(99, '.') + '\\n');
    const { serveFloor } = await import(${JSON.stringify(FLOOR)});
    const { kmsServiceDefinition } = await import(${JSON.stringify(PROTO)});
    serveFloor(kmsServiceDefinition(), ${JSON.stringify(socket)}, undefined);`;
  return ['--input-type=module', '-e', script];
}

/** The chatty floor started through startProcess, with its output sent where `logs` says. */
async function startChatty(name: string, logs?: LogSink): Promise<{ p: Plugin; socket: string }> {
  const socket = join(dir.path, `${name}.sock`);
  const args = chattyFloor(socket, 500);
  return { p: await startProcess({ name, command: process.execPath, args, socket, logs }), socket };
}

describe('startProcess output', () => {
  it('drains a pipe and keeps the last 4000 characters (logs: pipe), writing no file', async () => {
    const { p, socket } = await startChatty('piped', 'pipe');
    try {
      await p.stop();
      const out = p.output();
      expect(out.length).toBeLessThanOrEqual(4000);
      expect(out).toContain(`grpc-js floor server on unix://${socket}`);
      expect(out).toContain('.499\n');
      expect(out).not.toContain('.100\n');
      expect(existsSync(`${socket}.log`)).toBe(false);
    } finally {
      await p.stop();
    }
  });

  it('writes everything to the file next to the socket by default, and gives its tail', async () => {
    const { p, socket } = await startChatty('filed');
    try {
      await p.stop();
      const file = readFileSync(`${socket}.log`, 'utf8');
      expect(file).toContain('.0\n');
      expect(file).toContain('.499\n');
      expect(p.output()).toBe(file.slice(-4000));
    } finally {
      await p.stop();
    }
  });
});
