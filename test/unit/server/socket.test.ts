import { spawn } from 'node:child_process';
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { InvalidInputError } from '../../../src/errors.js';
import {
  parseEndpoint,
  prepareSocketPath,
  removeSocket,
  resolveGroup,
  socketIsLive,
} from '../../../src/server/socket.js';

let dir: string;
beforeEach(() => {
  // Short base path: sun_path is limited to 107 bytes.
  dir = mkdtempSync(join('/tmp', 'kso-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A socket file left behind by a process that was SIGKILLed while listening. */
async function staleSocket(path: string): Promise<void> {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(path)}, () => process.stdout.write('ready\\n'))`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve();
    });
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`child exited early (${code})`)));
  });
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
  expect(lstatSync(path).isSocket()).toBe(true);
}

function listen(path: string): Promise<Server> {
  return new Promise((resolve) => {
    const s = createServer((c) => c.end());
    s.listen(path, () => resolve(s));
  });
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe('parseEndpoint', () => {
  it('a filesystem path', () => {
    expect(parseEndpoint('unix:///var/run/kms/kms.sock')).toEqual({
      kind: 'path',
      path: '/var/run/kms/kms.sock',
      bindTarget: 'unix:///var/run/kms/kms.sock',
      display: 'unix:///var/run/kms/kms.sock',
    });
  });

  it('an abstract @name binds as unix:\\0name', () => {
    expect(parseEndpoint('unix:///@kms-plugin')).toEqual({
      kind: 'abstract',
      name: 'kms-plugin',
      bindTarget: 'unix:\0kms-plugin',
      display: 'unix:///@kms-plugin',
    });
  });

  it.each([
    'unix://var/run/kms.sock',
    'unix://@kms',
    'unix:/kms.sock',
    'tcp://127.0.0.1:1',
    '/var/run/kms.sock',
    'unix:///@',
    'unix:///a\0b',
  ])('rejects %j', (listen) => {
    expect(() => parseEndpoint(listen)).toThrow(InvalidInputError);
  });

  it('two-slash forms are rejected with the three-slash hint', () => {
    expect(() => parseEndpoint('unix://var/run/kms.sock')).toThrow(/three slashes/);
  });

  it('path length: 107 bytes is accepted, 108 refused', () => {
    const ok = `/${'a'.repeat(106)}`;
    expect(Buffer.byteLength(ok)).toBe(107);
    expect(parseEndpoint(`unix://${ok}`).kind).toBe('path');
    expect(() => parseEndpoint(`unix:///${'a'.repeat(107)}`)).toThrow(/at most 107/);
  });

  it('abstract name length: 106 bytes accepted, 107 refused', () => {
    expect(parseEndpoint(`unix:///@${'n'.repeat(106)}`).kind).toBe('abstract');
    expect(() => parseEndpoint(`unix:///@${'n'.repeat(107)}`)).toThrow(/1-106 bytes/);
  });
});

describe('prepareSocketPath', () => {
  it('a missing parent is created with mode 0750', async () => {
    const parent = join(dir, 'a', 'b');
    const path = join(parent, 'kms.sock');
    const old = process.umask(0o022);
    try {
      expect(await prepareSocketPath(path)).toBe('fresh');
    } finally {
      process.umask(old);
    }
    expect(statSync(parent).isDirectory()).toBe(true);
    expect(statSync(parent).mode & 0o777).toBe(0o750);
  });

  it('an existing parent is left as it is', async () => {
    const parent = join(dir, 'p');
    mkdirSync(parent, { mode: 0o700 });
    expect(await prepareSocketPath(join(parent, 'kms.sock'))).toBe('fresh');
    expect(statSync(parent).mode & 0o777).toBe(0o700);
  });

  it('a parent that is a file is refused', async () => {
    writeFileSync(join(dir, 'f'), 'x');
    const err = await rejection(prepareSocketPath(join(dir, 'f', 'kms.sock')));
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err.message).toMatch(/not a directory/);
  });

  it('a stale socket (its process was SIGKILLed) is replaced', async () => {
    const path = join(dir, 'kms.sock');
    await staleSocket(path);
    expect(await socketIsLive(path)).toBe(false);
    expect(await prepareSocketPath(path)).toBe('replaced-stale');
    expect(() => lstatSync(path)).toThrow(/ENOENT/);
    // And the path can be bound again.
    const s = await listen(path);
    await new Promise((r) => s.close(r));
  });

  it('a live socket is refused and left in place', async () => {
    const path = join(dir, 'kms.sock');
    const s = await listen(path);
    try {
      expect(await socketIsLive(path)).toBe(true);
      const err = await rejection(prepareSocketPath(path));
      expect(err).toBeInstanceOf(InvalidInputError);
      expect(err.message).toMatch(/another process is serving/);
      expect(lstatSync(path).isSocket()).toBe(true);
      expect(await socketIsLive(path)).toBe(true);
    } finally {
      await new Promise((r) => s.close(r));
    }
  });

  it('a regular file is refused and left untouched', async () => {
    const path = join(dir, 'kms.sock');
    writeFileSync(path, 'important');
    const err = await rejection(prepareSocketPath(path));
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err.message).toMatch(/regular file/);
    expect(readFileSync(path, 'utf8')).toBe('important');
  });

  it('a directory is refused and left untouched', async () => {
    const path = join(dir, 'kms.sock');
    mkdirSync(path);
    writeFileSync(join(path, 'inside'), 'x');
    const err = await rejection(prepareSocketPath(path));
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err.message).toMatch(/is a directory/);
    expect(readFileSync(join(path, 'inside'), 'utf8')).toBe('x');
  });

  it.each(['to a file', 'to a stale socket', 'dangling'])(
    'a symlink (%s) is refused and left untouched',
    async (kind) => {
      const path = join(dir, 'kms.sock');
      const target = join(dir, 'target');
      if (kind === 'to a file') writeFileSync(target, 'keep');
      if (kind === 'to a stale socket') await staleSocket(target);
      symlinkSync(target, path);
      const err = await rejection(prepareSocketPath(path));
      expect(err).toBeInstanceOf(InvalidInputError);
      expect(err.message).toMatch(/symlink/);
      expect(lstatSync(path).isSymbolicLink()).toBe(true);
      if (kind === 'to a file') expect(readFileSync(target, 'utf8')).toBe('keep');
      if (kind === 'to a stale socket') expect(lstatSync(target).isSocket()).toBe(true);
    },
  );
});

describe('removeSocket and resolveGroup', () => {
  it('removes only the socket with the same inode, never a file', async () => {
    const path = join(dir, 'kms.sock');
    await staleSocket(path);
    const ino = lstatSync(path).ino;
    removeSocket(path, ino + 1);
    expect(lstatSync(path).isSocket()).toBe(true);
    removeSocket(path, ino);
    expect(() => lstatSync(path)).toThrow(/ENOENT/);
    writeFileSync(path, 'file');
    removeSocket(path, undefined);
    expect(readFileSync(path, 'utf8')).toBe('file');
    removeSocket(join(dir, 'missing'), undefined); // no throw
  });

  it('resolves numeric gids and names from /etc/group', () => {
    expect(resolveGroup(5)).toBe(5);
    expect(resolveGroup('1234')).toBe(1234);
    expect(resolveGroup('root')).toBe(0);
    expect(() => resolveGroup('no-such-group-xyz')).toThrow(/use a numeric gid/);
  });
});
