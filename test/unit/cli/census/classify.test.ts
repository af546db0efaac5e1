/** Census classification of etcd values, and resource → etcd prefix resolution. */
import { describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { classifyValue } from '../../../../src/cli/census/classify.js';
import {
  expandResources,
  parseResourceList,
  storagePath,
  targetsForPresent,
} from '../../../../src/cli/census/resources.js';
import { encodeEncryptedObject } from '../../../../src/cli/etcd/encrypted-object.js';
import { ConfigError } from '../../../../src/errors.js';

const kmsV2 = (annotations: Record<string, Buffer> = {}, type: 0 | 1 = 1): Buffer =>
  Buffer.concat([
    Buffer.from('k8s:enc:kms:v2:other-plugin:'),
    encodeEncryptedObject({
      encryptedData: randomBytes(40),
      keyID: 'their-key-7',
      encryptedDEKSource: randomBytes(48),
      annotations,
      encryptedDEKSourceType: type,
    }),
  ]);

describe('classifyValue', () => {
  it.each([
    ['k8s:enc:aescbc:v1:key1:', { protection: 'aescbc', keyName: 'key1' }],
    ['k8s:enc:aesgcm:v1:gcm-key:', { protection: 'aesgcm', keyName: 'gcm-key' }],
    ['k8s:enc:secretbox:v1:sb:', { protection: 'secretbox', keyName: 'sb' }],
    ['k8s:enc:kms:v1:legacy-kms:', { protection: 'kms-v1', providerName: 'legacy-kms' }],
  ])('%s → %j', (prefix, want) => {
    expect(classifyValue(Buffer.concat([Buffer.from(prefix), randomBytes(64)]))).toEqual(want);
  });

  it('identity: protobuf (k8s\\0) and JSON', () => {
    expect(classifyValue(Buffer.from('k8s\0\n\x02v1'))).toEqual({ protection: 'identity' });
    expect(classifyValue(Buffer.from('{"kind":"Secret"}'))).toEqual({ protection: 'identity' });
  });

  it("another plugin's KMS v2: provider name, key_id and DEK-source type, no KEK fields", () => {
    expect(classifyValue(kmsV2())).toEqual({
      protection: 'kms-v2',
      providerName: 'other-plugin',
      keyId: 'their-key-7',
      dekSourceType: 'HKDF_SHA256_XNONCE_AES_GCM_SEED',
    });
    expect(classifyValue(kmsV2({ 'x.example.com': Buffer.from('y') }, 0))).toMatchObject({
      dekSourceType: 'AES_GCM_KEY',
    });
  });

  it('unknown, with a fixed reason that never contains value bytes', () => {
    const cases: Array<[Buffer, string]> = [
      [Buffer.from('top-secret-plaintext'), 'unknown prefix (neither k8s:enc: nor protobuf/JSON)'],
      [Buffer.from('k8s:enc:rot13:v1:k:abc'), 'unknown transformer rot13 v1'],
      [Buffer.from('k8s:enc:'), 'malformed k8s:enc: prefix'],
      [Buffer.from('k8s:enc:kms:v2:nocolon'), 'kms v2 prefix without a provider name'],
      [kmsV2().subarray(0, 60), 'kms v2 value does not decode (truncated?)'],
      [Buffer.alloc(0), 'empty value'],
    ];
    for (const [value, reason] of cases) {
      const c = classifyValue(value);
      expect(c.protection).toBe('unknown');
      expect(c.reason).toBe(reason);
      expect(JSON.stringify(c)).not.toContain('top-secret');
    }
  });
});

describe('resources', () => {
  it('storage paths as kube-apiserver lays them out', () => {
    expect(storagePath('secrets')).toBe('secrets');
    expect(storagePath('deployments.apps')).toBe('deployments');
    expect(storagePath('services')).toBe('services/specs');
    expect(storagePath('nodes')).toBe('minions');
    expect(storagePath('ingresses.networking.k8s.io')).toBe('ingress');
    expect(storagePath('widgets.example.com')).toBe('example.com/widgets');
  });

  it('expands *.G and *.* to present resources; exact names stay even when absent', () => {
    const present = targetsForPresent([
      'secrets',
      'deployments',
      'replicasets',
      'example.com/widgets',
      'minions',
    ]);
    expect(present.map((t) => t.resource)).toEqual([
      'secrets',
      'deployments.apps',
      'replicasets.apps',
      'widgets.example.com',
      'nodes',
    ]);
    expect(expandResources(['*.apps'], present).map((t) => t.resource)).toEqual([
      'deployments.apps',
      'replicasets.apps',
    ]);
    expect(expandResources(['*.example.com'], present).map((t) => t.path)).toEqual(['example.com/widgets']);
    expect(expandResources(['configmaps', '*.*'], present).map((t) => t.resource)).toEqual([
      'configmaps',
      'secrets',
      'deployments.apps',
      'replicasets.apps',
      'widgets.example.com',
      'nodes',
    ]);
    expect(expandResources(['*.'], present).map((t) => t.resource)).toEqual(['secrets', 'nodes']);
  });

  it('--resource lists: names only, ConfigError naming the flag otherwise', () => {
    expect(parseResourceList('--resource', ' Secrets, configmaps ,deployments.apps')).toEqual([
      'secrets',
      'configmaps',
      'deployments.apps',
    ]);
    expect(() => parseResourceList('--resource', '')).toThrow(ConfigError);
    expect(() => parseResourceList('--resource', 'secrets/../x')).toThrow(/--resource/);
  });
});
