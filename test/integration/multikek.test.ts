/**
 * Multi-KEK decryption against real plugin processes: the primary is key file B, with
 * `decryptOnly: [{provider: local, local: {keyFile: A}}]`. Data written under A still decrypts;
 * data under a KEK nobody configured fails with an error naming what is missing.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readKeyFile, zeroKeyFile } from '../../src/kek/local/keyfile.js';
import { ApiserverEmulator } from '../conformance/emulator.js';
import type { SpawnedPlugin } from '../support/plugin-process.js';
import { SECRET, harness } from './rotation-support.js';

const h = harness('mk');
afterAll(() => h.cleanup());

const keyA = h.newKeyFile('a.json');
const keyB = h.newKeyFile('b.json');
const keyC = h.newKeyFile('c.json');

function fileId(path: string): string {
  const { file } = readKeyFile(path);
  zeroKeyFile(file);
  return file.id;
}

/** Writes one object through a plugin on `keyFile`; returns the etcd value and the key_id. */
async function writeUnder(keyFile: string, etcdKey: string): Promise<{ value: Buffer; keyId: string }> {
  const p = await h.start(keyFile);
  const e = new ApiserverEmulator(p.endpoint, { profile: 'p129' });
  try {
    const { keyId } = await e.probe();
    return { value: e.writeObject(etcdKey, SECRET), keyId };
  } finally {
    e.close();
    await h.stop(p);
  }
}

function configFile(name: string, decryptOnly: string[]): string {
  const path = join(h.dir, name);
  const lines = ['provider: local', 'local:', `  keyFile: ${keyB}`, 'probe:', '  interval: 200ms'];
  if (decryptOnly.length) {
    lines.push('decryptOnly:');
    for (const f of decryptOnly) lines.push('  - provider: local', '    local:', `      keyFile: ${f}`);
  }
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

async function expectGrpcError(p: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as { code?: number; details?: string };
    if (typeof e.code === 'number' && e.code !== 0) return { code: e.code, details: e.details ?? '' };
    throw err;
  }
  throw new Error('expected a gRPC error, got success');
}

describe('decrypt-only KEKs (migration between keys)', () => {
  const underA = { key: '/registry/secrets/default/under-a', value: Buffer.alloc(0), keyId: '' };
  const underC = { key: '/registry/secrets/default/under-c', value: Buffer.alloc(0), keyId: '' };
  let plugin: SpawnedPlugin;

  beforeAll(async () => {
    const [a, c] = await Promise.all([writeUnder(keyA, underA.key), writeUnder(keyC, underC.key)]);
    Object.assign(underA, a);
    Object.assign(underC, c);
    plugin = await h.startWith(['--config', configFile('b-with-a.yaml', [keyA])]);
  });

  it('routes a Decrypt for A-data to the decrypt-only provider, while new data goes under B', async () => {
    const apiserver = new ApiserverEmulator(plugin.endpoint, { profile: 'p129' });
    try {
      const { keyId } = await apiserver.probe();
      expect(keyId).not.toBe(underA.keyId); // the primary (B) writes
      const read = await apiserver.readObject(underA.key, underA.value);
      expect(read.plaintext).toEqual(SECRET);
      expect(read.stale).toBe(true); // a storage migration would rewrite it under B
      expect(apiserver.decryptCalls).toBe(1);
      const underB = apiserver.writeObject('/registry/secrets/default/under-b', SECRET);
      apiserver.dropCache();
      expect((await apiserver.readObject('/registry/secrets/default/under-b', underB)).plaintext).toEqual(
        SECRET,
      );
    } finally {
      apiserver.close();
    }
  });

  it('a KEK that is configured nowhere gives a clear error naming the missing key', async () => {
    const apiserver = new ApiserverEmulator(plugin.endpoint, { profile: 'p129' });
    try {
      await apiserver.probe();
      const err = await expectGrpcError(apiserver.readObject(underC.key, underC.value));
      expect(err.code).toBe(5); // NOT_FOUND
      expect(err.details).toContain('no configured KEK can unwrap this DEK');
      expect(err.details).toContain(`local key ${fileId(keyC)} version 1`);
      expect(err.details).toContain('decryptOnly');
    } finally {
      apiserver.close();
    }
  });

  it('without the decrypt-only entry, A-data fails the same way (the entry is what makes it work)', async () => {
    const alone = await h.startWith(['--config', configFile('b-alone.yaml', [])]);
    const apiserver = new ApiserverEmulator(alone.endpoint, { profile: 'p129' });
    try {
      await apiserver.probe();
      const err = await expectGrpcError(apiserver.readObject(underA.key, underA.value));
      expect(err.details).toContain(`local key ${fileId(keyA)} version 1`);
    } finally {
      apiserver.close();
      await h.stop(alone);
    }
  });
});
