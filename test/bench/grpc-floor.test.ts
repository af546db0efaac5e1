/**
 * bench/grpc-floor.mjs, as bench:compare starts it (startFloor): plain node on the plugin's built
 * codecs (dist/, run `npm run build` first), no tsx loader, with the environment it is given, and
 * answering kmsv2probe-shaped calls. Also the proto-loader variant.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FLOOR, startFloor, startProcess, tempDir, type Plugin } from '../../bench/lib/procs.js';
import { KmsClient } from '../../src/server/client.js';

const dir = tempDir('kkp-floor-');
afterAll(() => dir.cleanup());

async function roundTrip(p: Plugin): Promise<void> {
  const client = new KmsClient(`unix://${p.socket}`);
  try {
    expect(await client.status()).toEqual({
      version: 'v2',
      healthz: 'ok',
      key_id: 'local-0000000000000000000000000000000000000000',
    });
    const plaintext = Buffer.from('a DEK seed, 32 bytes long......');
    const enc = await client.encrypt({ plaintext, uid: 'u1' });
    expect(enc.key_id).toBe('local-0000000000000000000000000000000000000000');
    expect(enc.ciphertext.equals(plaintext)).toBe(false);
    const dec = await client.decrypt({ ciphertext: enc.ciphertext, uid: 'u2', key_id: enc.key_id });
    expect(dec.plaintext.equals(plaintext)).toBe(true);
  } finally {
    client.close();
  }
}

const exitCode = (p: Plugin): Promise<number | null> =>
  new Promise((r) =>
    p.proc.exitCode !== null ? r(p.proc.exitCode) : p.proc.once('exit', (code) => r(code)),
  );

describe('the grpc-js floor (bench/grpc-floor.mjs)', () => {
  it('runs under plain node with the env it is given, answers, and exits 0 on SIGTERM', async () => {
    const env = { NODE_OPTIONS: '--max-semi-space-size=4 --max-old-space-size=256', MALLOC_ARENA_MAX: '2' };
    const p = await startFloor(join(dir.path, 'floor.sock'), env);
    try {
      const argv = readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
      expect(argv).toEqual([process.execPath, FLOOR, p.socket]);
      expect(FLOOR).toMatch(/\/bench\/grpc-floor\.mjs$/);
      // No loader in the process: tsx would put --require/--import hooks on the command line
      // (checked above) or in NODE_OPTIONS, which is exactly ours.
      const environ = readFileSync(`/proc/${p.pid}/environ`, 'utf8').split('\0');
      expect(environ.filter((e) => e.startsWith('NODE_OPTIONS='))).toEqual([
        `NODE_OPTIONS=${env.NODE_OPTIONS}`,
      ]);
      expect(environ).toContain('MALLOC_ARENA_MAX=2');
      await roundTrip(p);
      const exited = exitCode(p);
      await p.stop();
      expect(await exited).toBe(0);
      expect(p.output()).toContain(`grpc-js floor server on unix://${p.socket}`);
      // The stack as serve runs it: the session got serve's stream table.
      expect(p.output()).toContain('HTTP/2 stream table: adopted\n');
    } finally {
      await p.stop();
    }
  });

  it.each([
    ['proto-loader', "with proto-loader's codecs (what the plugin used before issue 16)"],
    ['node-streams', "with Node's own stream Map in the sessions (before the fourth pass)"],
  ])('serves %s: %s', async (word) => {
    const socket = join(dir.path, `floor-${word}.sock`);
    const p = await startProcess({
      name: `floor-${word}`,
      command: process.execPath,
      args: [FLOOR, socket, word],
      socket,
    });
    try {
      await roundTrip(p);
      await p.stop();
      const adopted = p.output().includes('HTTP/2 stream table: adopted');
      expect(adopted).toBe(word !== 'node-streams');
    } finally {
      await p.stop();
    }
  });
});
