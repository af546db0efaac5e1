/**
 * bench/grpc-floor.mjs, as bench:compare starts it (startFloor): plain node on the plugin's built
 * codecs (dist/, run `npm run build` first), no tsx loader, with the environment it is given, and
 * answering kmsv2probe-shaped calls. Also the proto-loader variant.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
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

const KMSV2PROBE = process.env.KMSV2PROBE ?? '/opt/kmsv2probe/bin/kmsv2probe';

/** Median bytes promoted per young-generation collection (`--trace-gc-nvp` lines). */
function medianPromoted(output: string): { scavenges: number; medianKB: number } {
  const promoted = output
    .split('\n')
    .filter((l) => l.includes('gc=s '))
    .map((l) => Number(/promoted=(\d+)/.exec(l)?.[1]))
    .sort((a, b) => a - b);
  return { scavenges: promoted.length, medianKB: (promoted[promoted.length >> 1] ?? NaN) / 1024 };
}

async function promotedUnderLoad(word: string | undefined): Promise<{ scavenges: number; medianKB: number }> {
  const socket = join(dir.path, `gc-${word ?? 'table'}.sock`);
  const p = await startProcess({
    name: `floor-gc-${word ?? 'table'}`,
    command: process.execPath,
    args: [
      '--trace-gc-nvp',
      '--max-semi-space-size=4',
      '--max-old-space-size=256',
      FLOOR,
      socket,
      ...(word ? [word] : []),
    ],
    socket,
  });
  try {
    await new Promise<void>((resolve, reject) =>
      execFile(
        KMSV2PROBE,
        [
          'load',
          '--socket',
          socket,
          '--op',
          'decrypt',
          '--concurrency',
          '16',
          '--duration',
          '2s',
          '--warmup',
          '500ms',
        ],
        { timeout: 30_000 },
        (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stdout}${stderr}`)) : resolve()),
      ),
    );
  } finally {
    await p.stop();
  }
  return medianPromoted(readFileSync(`${socket}.log`, 'utf8')); // the whole log (output() is its tail)
}

describe('the HTTP/2 stream table under load (src/server/stream-table.ts)', () => {
  const available = existsSync(KMSV2PROBE) || process.env.CI === 'true';
  (available ? it : it.skip)(
    "keeps finished calls out of V8's old generation, where Node's stream Map chained them all",
    async () => {
      // kmsv2probe saturates the one-threaded server at c=16, as bench:compare does. With Node's
      // Map every call's objects were promoted (~500 KB per young collection at c=16); with the
      // table only what is in flight at that moment (~30 KB).
      const table = await promotedUnderLoad(undefined);
      const nodeMap = await promotedUnderLoad('node-streams');
      expect(table.scavenges).toBeGreaterThanOrEqual(10);
      expect(nodeMap.scavenges).toBeGreaterThanOrEqual(10);
      expect(table.medianKB).toBeLessThan(150);
      // The control: the same measurement sees the chain when the table is not there.
      expect(nodeMap.medianKB).toBeGreaterThan(3 * table.medianKB);
    },
    60_000,
  );
});
