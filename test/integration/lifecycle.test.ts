/**
 * The real plugin process: SIGTERM, stale-socket replacement, refusal to touch what is not a
 * stale socket, restarts that keep decrypting.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { keygen } from '../../src/cli/keygen.js';
import { KmsClient } from '../../src/server/client.js';
import { runCli, spawnPlugin, tempDir } from '../support/plugin-process.js';

const dir = tempDir('kkp-life-');
const keyFile = join(dir.path, 'kek.json');
keygen(keyFile);
afterAll(() => dir.cleanup());

const args = (sock: string): string[] => [
  '--local-key-file',
  keyFile,
  '--provider',
  'local',
  '--listen',
  `unix://${sock}`,
  '--health-addr',
  '',
  '--log-level',
  'info',
];

/** Leaves a socket file nobody listens on: a child binds it and is SIGKILLed. */
async function staleSocket(path: string): Promise<void> {
  const child = spawn(
    process.execPath,
    ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  await new Promise<void>((r) => child.stdout.once('data', () => r()));
  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));
  expect(lstatSync(path).isSocket()).toBe(true);
}

describe('plugin process lifecycle', () => {
  it('SIGTERM: exits 0, removes its socket, logs the zeroing; a restart decrypts what the first process encrypted', async () => {
    const sock = join(dir.path, 'a.sock');
    const a = await spawnPlugin({ endpoint: `unix://${sock}`, args: args(sock) });
    const c = new KmsClient(a.endpoint);
    const seed = randomBytes(32);
    const e = await c.encrypt({ plaintext: seed, uid: randomUUID() });
    c.close();
    expect(await a.stop('SIGTERM')).toBe(0);
    expect(existsSync(sock)).toBe(false);
    expect(a.output()).toContain('keys zeroed');

    const b = await spawnPlugin({ endpoint: `unix://${sock}`, args: args(sock) });
    const c2 = new KmsClient(b.endpoint);
    try {
      const d = await c2.decrypt({
        ciphertext: e.ciphertext,
        key_id: e.key_id,
        annotations: e.annotations,
        uid: randomUUID(),
      });
      expect(Buffer.from(d.plaintext)).toEqual(seed);
      expect((await c2.status()).key_id).toBe(e.key_id);
    } finally {
      c2.close();
      await b.stop('SIGINT');
    }
  });

  it('SIGTERM with a slow remote Decrypt in flight: the call completes during the drain, then exit 0', async () => {
    const { FakeAwsKms } = await import('../fakes/aws-kms/index.js');
    const fake = new FakeAwsKms();
    const url = await fake.listen();
    const arn = fake.createKey().arn;
    const env = {
      AWS_ACCESS_KEY_ID: 'AKIDFAKE',
      AWS_SECRET_ACCESS_KEY: 'fake',
      AWS_EC2_METADATA_DISABLED: 'true',
    };
    const awsArgs = (sock: string): string[] => [
      ...['--provider', 'aws', '--aws-key-id', arn, '--aws-endpoint', url, '--aws-attempt-timeout', '5s'],
      ...['--listen', `unix://${sock}`, '--health-addr', '', '--shutdown-timeout', '10s'],
    ];
    try {
      const sock = join(dir.path, 'drain.sock');
      const a = await spawnPlugin({ endpoint: `unix://${sock}`, args: awsArgs(sock), env });
      const c = new KmsClient(a.endpoint);
      const seed = randomBytes(32);
      const e = await c.encrypt({ plaintext: seed, uid: randomUUID() });
      c.close();
      await a.stop();

      const b = await spawnPlugin({
        endpoint: `unix://${sock}`,
        args: awsArgs(sock),
        env,
        readyTimeoutMs: 20_000,
      });
      fake.latencyMs = 1500; // the cold Decrypt below needs one remote unwrap
      const c2 = new KmsClient(b.endpoint);
      const inflight = c2.decrypt(
        { ciphertext: e.ciphertext, key_id: e.key_id, annotations: e.annotations, uid: randomUUID() },
        10_000,
      );
      await new Promise((r) => setTimeout(r, 300));
      const exit = b.stop('SIGTERM');
      const d = await inflight;
      expect(Buffer.from(d.plaintext)).toEqual(seed);
      expect(await exit).toBe(0);
      c2.close();
      expect(existsSync(sock)).toBe(false);
      expect(b.output()).toContain('"drained":true');
    } finally {
      await fake.close();
    }
  });

  it('replaces a stale socket left by a crashed process', async () => {
    const sock = join(dir.path, 'stale.sock');
    await staleSocket(sock);
    const p = await spawnPlugin({ endpoint: `unix://${sock}`, args: args(sock) });
    try {
      expect(p.output()).toContain('replaced-stale');
    } finally {
      await p.stop();
    }
  });

  it('refuses a socket another process is serving on, and leaves that process alone', async () => {
    const sock = join(dir.path, 'live.sock');
    const first = await spawnPlugin({ endpoint: `unix://${sock}`, args: args(sock) });
    try {
      const second = await runCli(['serve', ...args(sock)]);
      expect(second.code).not.toBe(0);
      expect(second.stderr).toContain('another process is serving');
      const c = new KmsClient(first.endpoint);
      expect((await c.status()).healthz).toBe('ok');
      c.close();
    } finally {
      await first.stop();
    }
  });

  it.each([
    ['a regular file', (p: string) => writeFileSync(p, 'precious data'), 'not a socket'],
    ['a directory', (p: string) => mkdirSync(p), 'is a directory'],
    ['a symlink', (p: string) => symlinkSync('/etc/hostname', p), 'is a symlink'],
  ])('refuses to start when the socket path is %s, and leaves it untouched', async (_what, make, message) => {
    const path = join(dir.path, `x-${randomUUID().slice(0, 6)}`);
    make(path);
    const before = lstatSync(path);
    const r = await runCli(['serve', ...args(path)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(message);
    const after = lstatSync(path);
    expect(after.ino).toBe(before.ino);
    if (before.isFile()) expect(readFileSync(path, 'utf8')).toBe('precious data');
  });
});
