/** The local key file format: parse/serialize, versions, retire (src/kek/local/keyfile.ts). */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { InvalidInputError } from '../../../../src/errors.js';

import {
  addVersion,
  generateKeyFile,
  parseKeyFile,
  retireVersion,
  serializeKeyFile,
} from '../../../../src/kek/local/keyfile.js';
import { LocalProvider } from '../../../../src/kek/local/provider.js';
import type { LocalConfig } from '../../../../src/config/providers/local.js';
import { deps, localConfig } from './support.js';

let dir: string;
let path: string;
const cfg = (over: Partial<LocalConfig> = {}): LocalConfig => localConfig(path, over);

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kms-local-'));
  path = join(dir, 'kek.json');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('key file format', () => {
  const valid = (): Record<string, unknown> =>
    JSON.parse(serializeKeyFile(generateKeyFile())) as Record<string, unknown>;
  const withKeys = (f: (k: Record<string, unknown>) => void): string => {
    const o = valid();
    f((o.keys as Array<Record<string, unknown>>)[0]);
    return JSON.stringify(o);
  };

  it('serialize/parse round trip', () => {
    const f = generateKeyFile();
    addVersion(f);
    const back = parseKeyFile(serializeKeyFile(f), 'x');
    expect(back.id).toBe(f.id);
    expect(back.primary).toBe(2);
    expect(back.keys.map((k) => k.version)).toEqual([1, 2]);
    expect(back.keys[1].key.equals(f.keys[1].key)).toBe(true);
  });

  it.each<[string, string, RegExp]>([
    ['not JSON', 'nope', /not valid JSON/],
    ['JSON null', 'null', /not a JSON object/],
    ['wrong kind', JSON.stringify({ ...valid(), kind: 'x' }), /"kind" must be/],
    ['wrong formatVersion', JSON.stringify({ ...valid(), formatVersion: 3 }), /formatVersion/],
    ['bad id', JSON.stringify({ ...valid(), id: 'a/b' }), /"id"/],
    ['no keys', JSON.stringify({ ...valid(), keys: [] }), /at least one key/],
    ['key not an object', JSON.stringify({ ...valid(), keys: [null] }), /keys\[0\] is not an object/],
    ['bad version', withKeys((k) => (k.version = 0)), /keys\[0\]\.version/],
    ['bad created', withKeys((k) => (k.created = 'yesterday')), /keys\[0\]\.created/],
    ['short key', withKeys((k) => (k.key = Buffer.alloc(16).toString('base64'))), /32 bytes/],
    ['non-string key', withKeys((k) => (k.key = 5)), /base64/],
    ['primary missing', JSON.stringify({ ...valid(), primary: 9 }), /"primary"/],
  ])('%s → InvalidInputError naming the path and keygen', (_name, text, msg) => {
    let err: unknown;
    try {
      parseKeyFile(text, '/etc/kms/kek.json');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidInputError);
    expect((err as Error).message).toMatch(msg);
    expect((err as Error).message).toContain('/etc/kms/kek.json');
    expect((err as Error).message).toContain('keygen');
  });

  it('a duplicated version is refused', () => {
    const f = generateKeyFile();
    addVersion(f);
    f.keys[1].version = 1;
    f.primary = 1;
    expect(() => parseKeyFile(serializeKeyFile(f), 'p')).toThrow(/appears twice/);
  });

  it('malformed file content is refused by the provider with the path in the message', () => {
    writeFileSync(path, '{"kind":', { mode: 0o600 });
    expect(() => new LocalProvider(cfg(), deps())).toThrow(new RegExp(`${path}.*not valid JSON`));
  });

  it('error messages never include key material', () => {
    const f = generateKeyFile();
    const o = JSON.parse(serializeKeyFile(f)) as Record<string, unknown>;
    o.primary = 7;
    try {
      parseKeyFile(JSON.stringify(o), 'p');
    } catch (err) {
      expect((err as Error).message).not.toContain(f.keys[0].key.toString('base64'));
    }
  });

  it('retireVersion refuses the primary and unknown versions, removes others and zeroes them', () => {
    const f = generateKeyFile();
    addVersion(f);
    expect(() => retireVersion(f, 2)).toThrow(/is the primary/);
    expect(() => retireVersion(f, 5)).toThrow(/not in the key file/);
    f.primary = 1;
    expect(() => retireVersion(f, 2)).toThrow(/newer than the primary/);
    expect(f.keys).toHaveLength(2);
    f.primary = 2;
    const k1 = f.keys[0].key;
    retireVersion(f, 1);
    expect(f.keys.map((k) => k.version)).toEqual([2]);
    expect(k1.every((b) => b === 0)).toBe(true);
  });

  it('addVersion numbers after the highest version even after a retirement', () => {
    const f = generateKeyFile();
    addVersion(f);
    addVersion(f);
    retireVersion(f, 2);
    expect(addVersion(f)).toBe(4);
    expect(f.primary).toBe(4);
  });
});
