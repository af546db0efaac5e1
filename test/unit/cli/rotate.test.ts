/** `rotate` on a local key file: atomic, 0600, keeps older versions, lock, retire rules. */
import { afterAll, describe, expect, it } from '@jest/globals';
import { chmodSync, existsSync, readdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { keygen } from '../../../src/cli/keygen.js';
import { rotateKeyFile } from '../../../src/cli/rotate.js';
import { readKeyFile, writeKeyFile, zeroKeyFile } from '../../../src/kek/local/keyfile.js';
import { tempDir } from '../../support/plugin-process.js';

const dir = tempDir('kkp-urot-');
afterAll(() => dir.cleanup());
let n = 0;

function fresh(): string {
  n += 1;
  const path = join(dir.path, `k${n}.json`);
  keygen(path);
  return path;
}

function keys(path: string): { id: string; primary: number; versions: Array<[number, string]> } {
  const { file } = readKeyFile(path);
  const out = {
    id: file.id,
    primary: file.primary,
    versions: file.keys.map((k) => [k.version, k.key.toString('hex')] as [number, string]),
  };
  zeroKeyFile(file);
  return out;
}

describe('rotateKeyFile', () => {
  it('adds a new primary version, keeps the older keys byte for byte, the id, and mode 0600; leaves no temp or lock file', () => {
    const path = fresh();
    const before = keys(path);
    const r = rotateKeyFile(path);
    expect(r).toMatchObject({ action: 'rotated', version: 2, primary: 2, versions: [1, 2], id: before.id });
    const after = keys(path);
    expect(after.id).toBe(before.id);
    expect(after.primary).toBe(2);
    expect(after.versions[0]).toEqual(before.versions[0]);
    expect(after.versions[1][1]).not.toBe(before.versions[0][1]);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir.path).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('retire: refuses the primary and versions newer than it, removes an old one', () => {
    const path = fresh();
    rotateKeyFile(path);
    rotateKeyFile(path);
    expect(() => rotateKeyFile(path, { retire: 3 })).toThrow(/is the primary/);
    expect(() => rotateKeyFile(path, { retire: 9 })).toThrow(/not in the key file/);
    expect(rotateKeyFile(path, { retire: 1 })).toMatchObject({
      action: 'retired',
      version: 1,
      primary: 3,
      versions: [2, 3],
    });
    expect(keys(path).versions.map(([v]) => v)).toEqual([2, 3]);
    // "primary" edited back to 2: retiring 3 would make 2 current again under its old key_id.
    const { file } = readKeyFile(path);
    file.primary = 2;
    writeKeyFile(path, file);
    zeroKeyFile(file);
    expect(() => rotateKeyFile(path, { retire: 3 })).toThrow(/newer than the primary/);
    expect(keys(path).versions.map(([v]) => v)).toEqual([2, 3]);
  });

  it('refuses while another rotate holds the lock, and changes nothing', () => {
    const path = fresh();
    const lock = join(dir.path, `.${path.split('/').pop()}.lock`);
    writeFileSync(lock, '');
    expect(() => rotateKeyFile(path)).toThrow(/another rotate is running/);
    expect(keys(path).versions).toHaveLength(1);
    expect(existsSync(lock)).toBe(true); // someone else's lock is not removed
    unlinkSync(lock);
    expect(rotateKeyFile(path).primary).toBe(2);
  });

  it('refuses a key file readable by others unless allowed, and then rewrites it 0600', () => {
    const path = fresh();
    chmodSync(path, 0o644);
    expect(() => rotateKeyFile(path)).toThrow(/chmod 600/);
    rotateKeyFile(path, { allowInsecurePermissions: true });
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });
});
