/** `keygen` and createProvider({ createIfMissing }) for the local key file (src/cli/keygen.ts). */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { keygen } from '../../../src/cli/keygen.js';
import { InvalidInputError } from '../../../src/errors.js';
import { createProvider } from '../../../src/kek/local/index.js';
import { KEYFILE_KIND, generateKeyFile, readKeyFile } from '../../../src/kek/local/keyfile.js';
import { LocalProvider } from '../../../src/kek/local/provider.js';
import type { LocalConfig } from '../../../src/config/providers/local.js';
import { deps, localConfig, errorOf } from '../kek/local/support.js';

let dir: string;
let path: string;
const cfg = (over: Partial<LocalConfig> = {}): LocalConfig => localConfig(path, over);

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kms-local-'));
  path = join(dir, 'kek.json');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('keygen', () => {
  it('creates a key file with mode 0600 (parent created), parseable, one version', () => {
    const out = join(dir, 'sub', 'kek.json');
    const r = keygen(out);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const { file } = readKeyFile(out);
    expect(file.id).toBe(r.id);
    expect(file.primary).toBe(1);
    expect(file.keys).toHaveLength(1);
    expect(file.keys[0].key).toHaveLength(32);
    expect(JSON.parse(readFileSync(out, 'utf8')).kind).toBe(KEYFILE_KIND);
  });

  it('refuses to overwrite an existing file and leaves it untouched', () => {
    writeFileSync(path, 'precious', { mode: 0o600 });
    expect(() => keygen(path)).toThrow(/already exists/);
    expect(readFileSync(path, 'utf8')).toBe('precious');
    keygen(join(dir, 'other.json'));
    const before = readFileSync(join(dir, 'other.json'), 'utf8');
    expect(() => keygen(join(dir, 'other.json'))).toThrow(InvalidInputError);
    expect(readFileSync(join(dir, 'other.json'), 'utf8')).toBe(before);
  });

  it('two keygens make different ids and keys', () => {
    const a = generateKeyFile();
    const b = generateKeyFile();
    expect(a.id).not.toBe(b.id);
    expect(a.keys[0].key.equals(b.keys[0].key)).toBe(false);
  });

  it('createProvider with createIfMissing creates the file 0600, and never overwrites', async () => {
    const p = await createProvider(cfg({ createIfMissing: true }), deps());
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const before = readFileSync(path, 'utf8');
    const p2 = await createProvider(cfg({ createIfMissing: true }), deps());
    expect(readFileSync(path, 'utf8')).toBe(before);
    expect((p2 as LocalProvider).keyFileId).toBe((p as LocalProvider).keyFileId);
    await p.close();
    await p2.close();
  });

  it('createProvider without createIfMissing and no file → clear error naming keygen', async () => {
    const err = await errorOf(() => createProvider(cfg(), deps()));
    expect(err).toBeInstanceOf(InvalidInputError);
    expect((err as Error).message).toContain(path);
    expect((err as Error).message).toContain('keygen --out');
    expect(existsSync(path)).toBe(false);
  });
});
