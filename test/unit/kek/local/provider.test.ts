/** The local key-file provider: file permissions, wrap/unwrap, reload, retire, close (src/kek/local/provider.ts). */
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { keygen } from '../../../../src/cli/keygen.js';
import {
  InvalidInputError,
  PermissionDeniedError,
  PluginError,
  UnauthenticatedError,
  UnknownKeyError,
} from '../../../../src/errors.js';

import { addVersion, readKeyFile, retireVersion, writeKeyFile } from '../../../../src/kek/local/keyfile.js';
import { LocalProvider } from '../../../../src/kek/local/provider.js';
import { ForeignUnwrapRefError, ForeignWrapRefError } from '../../../../src/kek/ownership.js';
import type { LocalConfig } from '../../../../src/config/providers/local.js';
import type { KekRef } from '../../../../src/kek/types.js';
import { deps, localConfig, errorOf } from './support.js';

let dir: string;
let path: string;
const cfg = (over: Partial<LocalConfig> = {}): LocalConfig => localConfig(path, over);
const signal = (): AbortSignal => new AbortController().signal;
const dek = (): Buffer => Buffer.alloc(32, 0x5a);

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kms-local-'));
  path = join(dir, 'kek.json');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('permissions', () => {
  it.each([0o640, 0o604, 0o644, 0o660, 0o700 | 0o007])(
    'a key file with mode %o is refused, naming the path and chmod 600',
    (mode) => {
      keygen(path);
      chmodSync(path, mode);
      let err: unknown;
      try {
        new LocalProvider(cfg(), deps());
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PermissionDeniedError);
      expect((err as Error).message).toContain(path);
      expect((err as Error).message).toContain('chmod 600');
    },
  );

  it('allowInsecurePermissions accepts it', async () => {
    keygen(path);
    chmodSync(path, 0o644);
    const p = new LocalProvider(cfg({ allowInsecurePermissions: true }), deps());
    expect((await p.currentVersion(signal())).ref.version).toBe('1');
  });

  it('mode 0400 is fine', () => {
    keygen(path);
    chmodSync(path, 0o400);
    expect(() => new LocalProvider(cfg(), deps())).not.toThrow();
  });

  it('a directory at the path is refused', () => {
    expect(() => readKeyFile(dir)).toThrow(/not a regular file/);
  });
});

describe('LocalProvider', () => {
  it('currentVersion names the file id, version, creation time; enabled; ordinal = version', async () => {
    const { id } = keygen(path);
    const p = new LocalProvider(cfg(), deps());
    const info = await p.currentVersion(signal());
    const { file } = readKeyFile(path);
    expect(info).toEqual({
      ref: { provider: 'local', key: id, version: '1', unique: file.keys[0].created },
      state: 'enabled',
      ordinal: 1,
    });
    expect(p.description).toContain(id);
    expect(p.kind).toBe('local');
  });

  it('wrap/unwrap round trip; a second provider on the same file agrees', async () => {
    keygen(path);
    const p = new LocalProvider(cfg(), deps());
    const info = await p.currentVersion(signal());
    const w = await p.wrap(dek(), info, signal());
    expect(w.ref).toEqual(info.ref);
    expect(w.wrapped.includes(dek())).toBe(false);
    expect((await p.unwrap(w.wrapped, w.ref, signal())).equals(dek())).toBe(true);
    const q = new LocalProvider(cfg(), deps());
    expect((await q.unwrap(w.wrapped, w.ref, signal())).equals(dek())).toBe(true);
    expect(await q.currentVersion(signal())).toEqual(info);
  });

  it('every tampered byte of the wrapped DEK fails; too short fails too', async () => {
    keygen(path);
    const p = new LocalProvider(cfg(), deps());
    const info = await p.currentVersion(signal());
    const w = await p.wrap(dek(), info, signal());
    for (let i = 0; i < w.wrapped.length; i++) {
      const t = Buffer.from(w.wrapped);
      t[i] ^= 0x01;
      expect(await errorOf(() => p.unwrap(t, info.ref, signal()))).toBeInstanceOf(UnauthenticatedError);
    }
    const short = await errorOf(() => p.unwrap(w.wrapped.subarray(0, 28), info.ref, signal()));
    expect(short).toBeInstanceOf(UnauthenticatedError);
    expect((short as PluginError).message).toMatch(/too short/);
  });

  it('unknown version, unknown file id, wrong provider and a changed unique → UnknownKeyError', async () => {
    const { id } = keygen(path);
    const p = new LocalProvider(cfg(), deps());
    const info = await p.currentVersion(signal());
    const w = await p.wrap(dek(), info, signal());
    const bad: KekRef[] = [
      { ...info.ref, version: '2' },
      { ...info.ref, key: 'other-file-id' },
      { ...info.ref, provider: 'aws' },
      { ...info.ref, unique: '1999-01-01T00:00:00.000Z' },
    ];
    for (const ref of bad) {
      const err = await errorOf(() => p.unwrap(w.wrapped, ref, signal()));
      expect(err).toBeInstanceOf(UnknownKeyError);
    }
    // The foreign-reference check shared by every provider (src/kek/ownership.ts).
    expect(
      await errorOf(() => p.unwrap(w.wrapped, { ...info.ref, key: 'other-file-id' }, signal())),
    ).toBeInstanceOf(ForeignUnwrapRefError);
    expect(
      await errorOf(() => p.wrap(dek(), { ...info, ref: { ...info.ref, key: 'other-file-id' } }, signal())),
    ).toBeInstanceOf(ForeignWrapRefError);
    expect(p.canUnwrap(info.ref)).toBe(true);
    expect(p.canUnwrap({ ...info.ref, key: 'other-file-id' })).toBe(false);
    expect(p.canUnwrap({ ...info.ref, provider: 'aws', key: id })).toBe(false);
    expect(
      ((await errorOf(() => p.unwrap(w.wrapped, { ...info.ref, key: 'other-file-id' }, signal()))) as Error)
        .message,
    ).toContain(id);
  });

  it('a malformed version string → InvalidInputError', async () => {
    keygen(path);
    const p = new LocalProvider(cfg(), deps());
    const info = await p.currentVersion(signal());
    expect(
      await errorOf(() => p.wrap(dek(), { ...info, ref: { ...info.ref, version: 'x' } }, signal())),
    ).toBeInstanceOf(InvalidInputError);
  });

  it('an aborted signal is honoured', async () => {
    keygen(path);
    const p = new LocalProvider(cfg(), deps());
    const c = new AbortController();
    c.abort();
    const info = await p.currentVersion(signal());
    for (const fn of [
      () => p.currentVersion(c.signal),
      () => p.wrap(dek(), info, c.signal),
      () => p.unwrap(Buffer.alloc(60), info.ref, c.signal),
    ]) {
      expect(((await errorOf(fn)) as PluginError).kind).toBe('cancelled');
    }
  });

  it('reloads after addVersion + writeKeyFile: new primary, old version still unwraps', async () => {
    keygen(path);
    const p = new LocalProvider(cfg(), deps());
    const v1 = await p.currentVersion(signal());
    const w1 = await p.wrap(dek(), v1, signal());
    const { file } = readKeyFile(path);
    expect(addVersion(file)).toBe(2);
    writeKeyFile(path, file);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const v2 = await p.currentVersion(signal());
    expect(v2.ref.version).toBe('2');
    expect(v2.ref.key).toBe(v1.ref.key);
    expect(v2.ordinal).toBe(2);
    expect((await p.unwrap(w1.wrapped, v1.ref, signal())).equals(dek())).toBe(true);
    const w2 = await p.wrap(dek(), v2, signal());
    expect((await p.unwrap(w2.wrapped, v2.ref, signal())).equals(dek())).toBe(true);
    // The two versions are different keys.
    expect(await errorOf(() => p.unwrap(w2.wrapped, { ...v1.ref }, signal()))).toBeInstanceOf(
      UnauthenticatedError,
    );
  });

  it('unwrap of a version added by another writer reloads on demand', async () => {
    keygen(path);
    const p = new LocalProvider(cfg(), deps());
    const { file } = readKeyFile(path);
    addVersion(file);
    writeKeyFile(path, file);
    const q = new LocalProvider(cfg(), deps());
    const v2 = await q.currentVersion(signal());
    const w = await q.wrap(dek(), v2, signal());
    // p has not probed since the change; unwrap must still find version 2.
    expect((await p.unwrap(w.wrapped, v2.ref, signal())).equals(dek())).toBe(true);
  });

  it('a replaced file with a different id is refused; the old keys stay', async () => {
    keygen(path);
    const p = new LocalProvider(cfg(), deps());
    const v1 = await p.currentVersion(signal());
    const w1 = await p.wrap(dek(), v1, signal());
    rmSync(path);
    keygen(path); // a different key file at the same path
    const after = await p.currentVersion(signal());
    expect(after).toEqual(v1);
    expect((await p.unwrap(w1.wrapped, v1.ref, signal())).equals(dek())).toBe(true);
    expect(p.canUnwrap(v1.ref)).toBe(true);
  });

  it('a file that turns bad keeps the keys loaded earlier', async () => {
    keygen(path);
    const p = new LocalProvider(cfg(), deps());
    const v1 = await p.currentVersion(signal());
    writeFileSync(path, 'garbage', { mode: 0o600 });
    expect(await p.currentVersion(signal())).toEqual(v1);
    chmodSync(path, 0o644);
    expect(await p.currentVersion(signal())).toEqual(v1);
  });

  it('newestVersion is the highest version even when "primary" was edited back', async () => {
    keygen(path);
    const p = new LocalProvider(cfg(), deps());
    const { file } = readKeyFile(path);
    addVersion(file);
    writeKeyFile(path, file);
    expect((await p.newestVersion(signal())).ref.version).toBe('2');
    const { file: edited } = readKeyFile(path);
    edited.primary = 1;
    writeKeyFile(path, edited);
    const cur = await p.currentVersion(signal());
    const newest = await p.newestVersion(signal());
    expect(cur.ref.version).toBe('1');
    expect(newest.ref.version).toBe('2');
    expect(newest.ordinal).toBe(2);
    expect(newest.state).toBe('enabled');
    expect(newest.ref.key).toBe(cur.ref.key);
  });

  it('a retired version cannot unwrap after reload', async () => {
    keygen(path);
    const p = new LocalProvider(cfg(), deps());
    const v1 = await p.currentVersion(signal());
    const w1 = await p.wrap(dek(), v1, signal());
    const { file } = readKeyFile(path);
    addVersion(file);
    retireVersion(file, 1);
    writeKeyFile(path, file);
    expect((await p.currentVersion(signal())).ref.version).toBe('2');
    const err = await errorOf(() => p.unwrap(w1.wrapped, v1.ref, signal()));
    expect(err).toBeInstanceOf(UnknownKeyError);
    expect((err as Error).message).toMatch(/version 1 is not in/);
  });

  it('close() zeroes the keys (unwrap afterwards cannot succeed)', async () => {
    keygen(path);
    const p = new LocalProvider(cfg(), deps());
    const v1 = await p.currentVersion(signal());
    const w1 = await p.wrap(dek(), v1, signal());
    await p.close();
    expect(await errorOf(() => p.unwrap(w1.wrapped, v1.ref, signal()))).toBeInstanceOf(UnauthenticatedError);
  });

  it('with watch on, a rewrite of the key file fires the change hint', async () => {
    keygen(path);
    const p = new LocalProvider(cfg({ watch: true }), deps());
    let hints = 0;
    p.onChangeHint(() => (hints += 1));
    const { file } = readKeyFile(path);
    addVersion(file);
    writeKeyFile(path, file);
    const until = Date.now() + 3000;
    while (hints === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    await p.close();
    expect(hints).toBeGreaterThan(0);
  });
});
