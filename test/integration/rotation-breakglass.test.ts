/**
 * `inspect` and `decrypt-etcd-value` (the CLI, as an operator runs it) on etcd values produced by
 * the apiserver emulation against a real plugin process, for both DEK-source types
 * (p127 → AES_GCM_KEY = 0, p129 → HKDF_SHA256_XNONCE_AES_GCM_SEED = 1), including a value under a
 * KEK version that was rotated away from and a value only a decrypt-only KEK can open.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeAnnotations } from '../../src/envelope/annotations.js';
import { dekIdOf } from '../../src/envelope/envelope.js';
import { rotateKeyFile } from '../../src/cli/rotate.js';
import { parseEtcdValue } from '../../src/cli/etcd/value.js';
import { ApiserverEmulator } from '../conformance/emulator.js';
import type { Profile } from '../conformance/apiserver-rules.js';
import { CLI, runCli } from '../support/plugin-process.js';
import { SECRET, harness, waitForKeyIdChange } from './rotation-support.js';

const h = harness('bg');
afterAll(() => h.cleanup());

const keyA = h.newKeyFile('a.json');
const keyB = h.newKeyFile('b.json');

interface Sample {
  profile: Profile;
  etcdKey: string;
  file: string;
  value: Buffer;
  keyId: string;
}
const samples: Sample[] = [];
let rotatedKeyId = '';

/** Writes like `etcdctl get --print-value-only` prints: the raw bytes plus a newline. */
function save(name: string, value: Buffer): string {
  const path = join(h.dir, name);
  writeFileSync(path, Buffer.concat([value, Buffer.from('\n')]));
  return path;
}

function keyMaterial(path: string): string[] {
  return (JSON.parse(readFileSync(path, 'utf8')) as { keys: Array<{ key: string }> }).keys.map((k) => k.key);
}

function configFile(name: string, primary: string, decryptOnly: string[] = []): string {
  const lines = ['provider: local', 'local:', `  keyFile: ${primary}`];
  if (decryptOnly.length) {
    lines.push('decryptOnly:');
    for (const f of decryptOnly) lines.push('  - provider: local', '    local:', `      keyFile: ${f}`);
  }
  const path = join(h.dir, name);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

function runWithStdin(
  args: string[],
  input: Buffer,
): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', rej);
    p.on('exit', (code) => res({ code, stdout: Buffer.concat(out), stderr }));
    p.stdin.end(input);
  });
}

beforeAll(async () => {
  // One plugin answering v2beta1 serves both profiles (p129 accepts v2beta1 too).
  const plugin = await h.start(keyA, ['--status-version', 'v2beta1']);
  for (const profile of ['p127', 'p129'] as const) {
    const apiserver = new ApiserverEmulator(plugin.endpoint, { profile, providerName: 'kms-prod' });
    try {
      const { keyId } = await apiserver.probe();
      const etcdKey = `/registry/secrets/default/${profile}`;
      const value = apiserver.writeObject(etcdKey, SECRET);
      samples.push({ profile, etcdKey, value, keyId, file: save(`${profile}.bin`, value) });
    } finally {
      apiserver.close();
    }
  }
  // A rotation: a value under version 2 as well.
  rotateKeyFile(keyA);
  rotatedKeyId = await waitForKeyIdChange(plugin.endpoint, samples[0].keyId);
  const apiserver = new ApiserverEmulator(plugin.endpoint, { profile: 'p129', providerName: 'kms-prod' });
  try {
    await apiserver.probe();
    const etcdKey = '/registry/secrets/kube-system/after-rotation';
    const value = apiserver.writeObject(etcdKey, SECRET);
    samples.push({ profile: 'p129', etcdKey, value, keyId: rotatedKeyId, file: save('rotated.bin', value) });
  } finally {
    apiserver.close();
    await h.stop(plugin);
  }
});

describe('inspect', () => {
  const cases: Array<[Profile, 0 | 1, string]> = [
    ['p127', 0, 'AES_GCM_KEY'],
    ['p129', 1, 'HKDF_SHA256_XNONCE_AES_GCM_SEED'],
  ];
  it.each(cases)(
    '%s value: prints provider name, key_id, KEK reference, DEK id, format and type %i (JSON)',
    async (profile, type, typeName) => {
      const s = samples.find((x) => x.profile === profile)!;
      const r = await runCli(['inspect', '--value-file', s.file, '--json']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const obj = parseEtcdValue(s.value);
      if (obj.kind !== 'kms-v2') throw new Error('emulator value is not kms v2');
      const env = decodeAnnotations(obj.object.annotations);
      expect(JSON.parse(r.stdout)).toEqual({
        storage: 'kms-v2',
        providerName: 'kms-prod',
        keyId: s.keyId,
        dekSourceType: type,
        dekSourceTypeName: typeName,
        encryptedDataBytes: obj.object.encryptedData.length,
        annotationKeys: ['dek.k8s-kms-plugin.io', 'kek.k8s-kms-plugin.io'],
        ciphertextBytes: obj.object.encryptedDEKSource.length,
        ours: true,
        kek: env.ref,
        keyIdGeneration: 0,
        keyIdConsistent: true,
        dekId: dekIdOf(env.wrapped),
        formatVersion: 2, // new data carries the DEK commitment (issue 12.1)
        formatKnown: true,
      });
      expect(env.ref).toMatchObject({ provider: 'local', version: '1' });
    },
  );

  it('text output from stdin names the rotated version and contains no secret', async () => {
    const s = samples[2];
    const r = await runWithStdin(['inspect'], readFileSync(s.file));
    expect(r.code).toBe(0);
    const text = r.stdout.toString();
    expect(text).toMatch(/storage:\s+KMS v2/);
    expect(text).toMatch(/provider name:\s+kms-prod/);
    expect(text).toContain(`key_id:`);
    expect(text).toContain(rotatedKeyId);
    expect(text).toMatch(/kek version:\s+2/);
    expect(text).toMatch(/dek source type:\s+1 \(HKDF_SHA256_XNONCE_AES_GCM_SEED\)/);
    expect(text).toContain('matches the KEK reference');
    const obj = parseEtcdValue(s.value);
    if (obj.kind !== 'kms-v2') throw new Error('not kms v2');
    const wrapped = obj.object.annotations['dek.k8s-kms-plugin.io'];
    for (const secret of [
      ...keyMaterial(keyA),
      wrapped.toString('base64'),
      wrapped.toString('hex'),
      SECRET.toString(),
    ]) {
      expect(text).not.toContain(secret);
    }
  });

  it('says so when a value is not KMS v2 (another transformer, or not encrypted)', async () => {
    const aescbc = save(
      'aescbc.bin',
      Buffer.concat([Buffer.from('k8s:enc:aescbc:v1:key1:'), Buffer.alloc(48, 7)]),
    );
    const r1 = await runCli(['inspect', '--value-file', aescbc]);
    expect(r1.code).toBe(0);
    expect(r1.stdout).toContain('encrypted by aescbc v1 (provider "key1"), not KMS v2');
    const plain = save(
      'plain.bin',
      Buffer.concat([Buffer.from('k8s\0'), Buffer.from([0x0a, 0x02, 0x76, 0x31])]),
    );
    const r2 = await runCli(['inspect', '--value-file', plain, '--json']);
    expect(JSON.parse(r2.stdout)).toEqual({ storage: 'identity', encoding: 'protobuf' });
  });
});

describe('decrypt-etcd-value (break-glass)', () => {
  const config = (): string => configFile('a.yaml', keyA);

  it('refuses without --i-understand-this-prints-secrets', async () => {
    const s = samples[0];
    const r = await runCli([
      'decrypt-etcd-value',
      '--etcd-key',
      s.etcdKey,
      '--value-file',
      s.file,
      '--config',
      config(),
    ]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('--i-understand-this-prints-secrets');
  });

  it.each(['p127', 'p129'] as const)('%s value: prints the object and warns on stderr', async (profile) => {
    const s = samples.find((x) => x.profile === profile)!;
    const r = await runCli([
      'decrypt-etcd-value',
      '--etcd-key',
      s.etcdKey,
      '--value-file',
      s.file,
      '--config',
      config(),
      '--i-understand-this-prints-secrets',
    ]);
    expect(r.stderr).toContain('WARNING: break-glass decryption');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(SECRET.toString());
  });

  it('opens data under an older key version and, through decryptOnly, under another key file (stdin input)', async () => {
    const rotated = samples[2];
    const cfg = configFile('b-with-a.yaml', keyB, [keyA]);
    for (const s of [samples[0], rotated]) {
      const r = await runWithStdin(
        [
          'decrypt-etcd-value',
          '--etcd-key',
          s.etcdKey,
          '--config',
          cfg,
          '--i-understand-this-prints-secrets',
        ],
        readFileSync(s.file),
      );
      expect(r.stderr).toContain('WARNING');
      expect(r.code).toBe(0);
      expect(r.stdout).toEqual(SECRET);
    }
    // Only B configured: the error names the key file that is missing.
    const r = await runCli([
      'decrypt-etcd-value',
      '--etcd-key',
      rotated.etcdKey,
      '--value-file',
      rotated.file,
      '--local-key-file',
      keyB,
      '--i-understand-this-prints-secrets',
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('no configured KEK can unwrap this DEK');
    expect(r.stderr).toContain('version 2');
  });

  it('--out onto an existing file: one clear line, exit 2, the file untouched (issue 12.6)', async () => {
    const s = samples[0];
    const out = join(h.dir, 'existing-out.json');
    writeFileSync(out, 'keep me');
    const r = await runCli([
      'decrypt-etcd-value',
      '--etcd-key',
      s.etcdKey,
      '--value-file',
      s.file,
      '--config',
      config(),
      '--i-understand-this-prints-secrets',
      '--out',
      out,
    ]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    const errLines = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('k8s-kms-plugin:') && !l.startsWith('k8s-kms-plugin: WARNING'));
    expect(errLines).toEqual([
      `k8s-kms-plugin: config: --out: ${out} already exists; it is never overwritten (it may hold decrypted secrets): remove it or choose another path`,
    ]);
    expect(r.stderr).not.toContain('unexpected error');
    expect(r.stderr).not.toContain('EEXIST');
    expect(readFileSync(out, 'utf8')).toBe('keep me');
  });

  it('fails closed on the wrong etcd key (it is the AAD)', async () => {
    const s = samples[1];
    const r = await runCli([
      'decrypt-etcd-value',
      '--etcd-key',
      '/registry/secrets/default/someone-else',
      '--value-file',
      s.file,
      '--config',
      config(),
      '--i-understand-this-prints-secrets',
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('failed authentication');
  });
});
