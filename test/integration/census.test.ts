/**
 * `census` against a real etcd (3.4, started on loopback by the test): values written exactly as
 * kube-apiserver writes them (identity protobuf, aescbc, KMS v2 through a real Envelope over a
 * local key file), counted per resource × protection; paging; wildcard expansion from an
 * EncryptionConfiguration; TLS client auth; bad input.
 */
import { afterAll, beforeAll, expect, it, describe } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { keygen } from '../../src/cli/keygen.js';
import { rotateKeyFile } from '../../src/cli/rotate.js';
import { runCensus, type CensusReport } from '../../src/cli/census/census.js';
import { formatCensus, runChecks } from '../../src/cli/census/command.js';
import { connectEtcd, etcdOptionsFrom, type EtcdConnection } from '../../src/cli/etcd/connect.js';
import { ConfigError, UnavailableError } from '../../src/errors.js';
import { aescbcValue, identityValue, KmsV2Writer, secretObject } from '../support/apiserver-values.js';
import { describeEtcd } from '../support/describe-etcd.js';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { tempDir } from '../support/plugin-process.js';
import { createTestPki } from '../support/test-pki.js';

const T = 60_000;

describeEtcd('census over a real etcd (plain http)', () => {
  let etcd: TestEtcd;
  const dir = tempDir('kkp-census-');
  const keyFile = join(dir.path, 'kek.json');
  let writer: KmsV2Writer;
  let keyIdV1: string;
  let keyIdV2: string;
  let report: CensusReport;
  const wrappedSeen: Buffer[] = [];

  beforeAll(async () => {
    etcd = await startEtcd();
    keygen(keyFile);
    writer = await KmsV2Writer.create(keyFile, 'kms-plugin');
    keyIdV1 = writer.keyId;
    const c = etcd.client();
    try {
      // secrets: 30 under KEK version 1, 20 under version 2 (after rotate), 5 plaintext
      for (let i = 0; i < 30; i++) {
        const k = `/registry/secrets/ns${i % 3}/s${i}`;
        await c.put(k).value(writer.value(k, secretObject(`s${i}`)));
      }
      rotateKeyFile(keyFile);
      await writer.adoptPrimary();
      keyIdV2 = writer.keyId;
      for (let i = 30; i < 50; i++) {
        const k = `/registry/secrets/ns${i % 3}/s${i}`;
        const v = writer.value(k, secretObject(`s${i}`));
        await c.put(k).value(v);
      }
      for (let i = 0; i < 5; i++) await c.put(`/registry/secrets/plain/p${i}`).value(identityValue(`p${i}`));
      // configmaps: 7 under aescbc key1, 2 plaintext
      const aesKey = randomBytes(32);
      for (let i = 0; i < 7; i++)
        await c
          .put(`/registry/configmaps/ns/c${i}`)
          .value(aescbcValue('key1', aesKey, secretObject(`c${i}`, 'ConfigMap')));
      await c.put('/registry/configmaps/ns/j0').value(Buffer.from('{"kind":"ConfigMap","apiVersion":"v1"}'));
      await c.put('/registry/configmaps/ns/j1').value(identityValue('j1'));
      // bad input: an unknown prefix, an unknown transformer, a truncated KMS v2 protobuf
      await c.put('/registry/secrets/bad/unknown-prefix').value(Buffer.from('\x00\x01garbage-not-k8s'));
      await c.put('/registry/secrets/bad/unknown-transformer').value(Buffer.from('k8s:enc:rot13:v1:x:abc'));
      const good = writer.value('/registry/secrets/bad/truncated', secretObject('t'));
      await c.put('/registry/secrets/bad/truncated').value(good.subarray(0, good.length - 30));
      // KMS v1 and another plugin's KMS v2 (no annotations of ours)
      await c
        .put('/registry/secrets/other/v1')
        .value(Buffer.from('k8s:enc:kms:v1:old-kms:\x00\x20somebytes'));
      // other resources, for wildcard expansion
      await c.put('/registry/deployments/ns/d1').value(identityValue('d1'));
      await c.put('/registry/replicasets/ns/r1').value(identityValue('r1'));
      await c.put('/registry/example.com/widgets/ns/w1').value(identityValue('w1'));
      await c.put('/registry/services/specs/ns/svc').value(identityValue('svc'));
      await c.put('/registry/minions/node1').value(identityValue('node1'));
      // something outside the prefix that must never be counted
      await c.put('/other/secrets/ns/x').value(identityValue('x'));
    } finally {
      c.close();
    }
    // the wrapped DEKs (annotation dek.k8s-kms-plugin.io) must never appear in output
    const info = writer.envelope.encrypt(randomBytes(32));
    wrappedSeen.push(info.annotations['dek.k8s-kms-plugin.io']);
    report = await runCensus({
      etcd: etcdOptionsFrom({ etcdEndpoints: etcd.endpoint }),
      resources: ['secrets', 'configmaps'],
      pageSize: 7,
    });
  }, T);

  afterAll(async () => {
    await writer?.close();
    await etcd?.stop();
    dir.cleanup();
  }, T);

  const count = (where: Record<string, unknown>): number =>
    report.groups
      .filter((g) =>
        Object.entries(where).every(([k, v]) => (g as unknown as Record<string, unknown>)[k] === v),
      )
      .reduce((n, g) => n + g.count, 0);

  it('counts every object per resource × protection, paging past the page size', () => {
    expect(report.resources).toEqual([
      { resource: 'secrets', keyPrefix: '/registry/secrets/', count: 59 },
      { resource: 'configmaps', keyPrefix: '/registry/configmaps/', count: 9 },
    ]);
    expect(report.total).toBe(68);
    expect(report.interrupted).toBe(false);
    expect(count({ resource: 'secrets', protection: 'kms-v2', kekVersion: '1' })).toBe(30);
    expect(count({ resource: 'secrets', protection: 'kms-v2', kekVersion: '2' })).toBe(20);
    expect(count({ resource: 'secrets', protection: 'identity' })).toBe(5);
    expect(count({ resource: 'secrets', protection: 'unknown' })).toBe(3);
    expect(count({ resource: 'secrets', protection: 'kms-v1', providerName: 'old-kms' })).toBe(1);
    expect(count({ resource: 'configmaps', protection: 'aescbc', keyName: 'key1' })).toBe(7);
    expect(count({ resource: 'configmaps', protection: 'identity' })).toBe(2);
  });

  it('gives KMS v2 provider name, key_id, DEK-source type, and for our values KEK provider/key/version and DEK id', () => {
    const v1 = report.groups.find((g) => g.kekVersion === '1')!;
    expect(v1).toMatchObject({
      resource: 'secrets',
      protection: 'kms-v2',
      providerName: 'kms-plugin',
      keyId: keyIdV1,
      dekSourceType: 'HKDF_SHA256_XNONCE_AES_GCM_SEED',
      kekProvider: 'local',
      kekVersion: '1',
      count: 30,
    });
    expect(v1.kekKey).toBe(writer.provider.keyFileId);
    // one seed per key_id, as the apiserver does: one DEK id for the 30 objects
    expect(Object.values(v1.dekIds ?? {})).toEqual([30]);
    expect(Object.keys(v1.dekIds ?? {})[0]).toMatch(/^[0-9a-f]{32}$/);
    const v2 = report.groups.find((g) => g.kekVersion === '2')!;
    expect(v2.keyId).toBe(keyIdV2);
    expect(keyIdV2).not.toBe(keyIdV1);
  });

  it('names why a value is unknown, without printing it', () => {
    const reasons = report.groups.filter((g) => g.protection === 'unknown').map((g) => g.reason);
    expect(reasons).toEqual(
      expect.arrayContaining([
        'unknown prefix (neither k8s:enc: nor protobuf/JSON)',
        'unknown transformer rot13 v1',
        'kms v2 value does not decode (truncated?)',
      ]),
    );
    const text = formatCensus(report) + JSON.stringify(report);
    expect(text).not.toContain('garbage');
  });

  it('never prints a wrapped key, ciphertext or object bytes', () => {
    const text = formatCensus(report) + JSON.stringify(report);
    for (const w of wrappedSeen) {
      expect(text).not.toContain(w.toString('base64'));
      expect(text).not.toContain(w.toString('hex'));
    }
    expect(text).not.toMatch(/s1[0-9]\b/); // object names (inside the encrypted/plain objects) never appear
    expect(formatCensus(report)).toMatch(/secrets\s+kms-v2\s+30\s+provider=kms-plugin key_id=/);
  });

  it('checks for scripts: fail-if-version, expect-key-id, can-retire', () => {
    const [fail1, expect2, retire1] = runChecks(report, {
      failIfVersion: '1',
      expectKeyId: keyIdV2,
      canRetire: '1',
    });
    expect(fail1).toMatchObject({ ok: false, objects: 30, byResource: { secrets: 30 } });
    expect(expect2).toMatchObject({ ok: false, objects: 68 - 20 });
    expect(expect2.byResource).toEqual({ secrets: 39, configmaps: 9 });
    expect(retire1).toMatchObject({ ok: false, objects: 30 });
    expect(runChecks(report, { canRetire: '7' })[0].ok).toBe(true);
    // an aescbc key name and a key_id are versions too
    expect(runChecks(report, { failIfVersion: 'key1' })[0]).toMatchObject({ ok: false, objects: 7 });
    expect(runChecks(report, { failIfVersion: keyIdV2 })[0]).toMatchObject({ ok: false, objects: 20 });
    // --kek-key narrows to one KEK
    expect(runChecks(report, { canRetire: '1', kekKey: 'another-key-file' })[0].ok).toBe(true);
    expect(runChecks(report, { canRetire: '1', kekKey: writer.provider.keyFileId })[0].objects).toBe(30);
    expect(formatCensus(report, runChecks(report, { canRetire: '1' }))).toContain(
      'REFUSED: 1 cannot be retired: 30 objects are still under it (secrets=30)',
    );
  });

  it('takes every resource an EncryptionConfiguration lists, expanding *.apps and *.* to what etcd holds', async () => {
    const cfg = join(dir.path, 'enc.yaml');
    writeFileSync(
      cfg,
      [
        'apiVersion: apiserver.config.k8s.io/v1',
        'kind: EncryptionConfiguration',
        'resources:',
        '  - resources: [secrets]',
        '    providers: [{kms: {apiVersion: v2, name: kms-plugin, endpoint: unix:///x.sock}}, {identity: {}}]',
        '  - resources: ["*.apps"]',
        '    providers: [{identity: {}}]',
        '',
      ].join('\n'),
    );
    const r = await runCensus({
      etcd: etcdOptionsFrom({ etcdEndpoints: etcd.endpoint }),
      encryptionConfig: cfg,
    });
    expect(r.resources.map((x) => [x.resource, x.count])).toEqual([
      ['secrets', 59],
      ['deployments.apps', 1],
      ['replicasets.apps', 1],
    ]);
    writeFileSync(
      cfg,
      'apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: ["*.*"]\n    providers: [{identity: {}}]\n',
    );
    const all = await runCensus({
      etcd: etcdOptionsFrom({ etcdEndpoints: etcd.endpoint }),
      encryptionConfig: cfg,
    });
    const names = all.resources.map((x) => x.resource).sort();
    expect(names).toEqual(
      [
        'configmaps',
        'deployments.apps',
        'nodes',
        'replicasets.apps',
        'secrets',
        'services',
        'widgets.example.com',
      ].sort(),
    );
    expect(all.total).toBe(59 + 9 + 1 + 1 + 1 + 1 + 1); // never /other/…
  });

  it('another --etcd-prefix reads only under it', async () => {
    const r = await runCensus({
      etcd: etcdOptionsFrom({ etcdEndpoints: etcd.endpoint, etcdPrefix: '/other/' }),
      resources: ['secrets'],
    });
    expect(r.total).toBe(1);
    expect(r.resources[0].keyPrefix).toBe('/other/secrets/');
  });

  it('reports progress per page and stops cleanly when aborted', async () => {
    const ticks: number[] = [];
    let total = 0;
    const r = await runCensus({
      etcd: etcdOptionsFrom({ etcdEndpoints: etcd.endpoint }),
      resources: ['secrets', 'configmaps'],
      pageSize: 10,
      onTotal: (t) => (total = t),
      onProgress: (n) => ticks.push(n),
    });
    expect(total).toBe(68);
    expect(ticks.reduce((a, b) => a + b, 0)).toBe(r.total);
    expect(ticks.length).toBeGreaterThanOrEqual(7);
    const abort = new AbortController();
    const partial = await runCensus({
      etcd: etcdOptionsFrom({ etcdEndpoints: etcd.endpoint }),
      resources: ['secrets', 'configmaps'],
      pageSize: 10,
      signal: abort.signal,
      onProgress: () => abort.abort(),
    });
    expect(partial.interrupted).toBe(true);
    expect(partial.total).toBeLessThan(68);
    expect(runChecks(partial, { canRetire: 'nothing-under-this' })[0].ok).toBe(false);
  });

  it('etcd compacting the pass revision midway: the rest is read at a newer revision, each key once', async () => {
    const real = await connectEtcd(etcdOptionsFrom({ etcdEndpoints: etcd.endpoint }));
    const c = etcd.client();
    let calls = 0;
    let compactedAt = '';
    const conn: EtcdConnection = {
      endpoints: real.endpoints,
      close: () => real.close(),
      async range(...args) {
        calls += 1;
        if (calls === 4) {
          // what kube-apiserver's periodic compaction does to a long pass
          const put = await c.put('/other/bump').value('x');
          compactedAt = put.header.revision;
          await c.kv.compact({ revision: compactedAt, physical: true });
        }
        return real.range(...args);
      },
    };
    try {
      const r = await runCensus({
        etcd: { connection: conn, prefix: '/registry' },
        resources: ['secrets'],
        pageSize: 10,
      });
      expect(r.total).toBe(59);
      expect(r.resources[0].count).toBe(59);
      expect(r.movedFromRevision).toBeDefined();
      expect(Number(r.revision)).toBeGreaterThanOrEqual(Number(compactedAt));
      expect(formatCensus(r)).toContain('was compacted during the pass');
    } finally {
      c.close();
      real.close();
    }
  });

  it('an unreachable etcd is a clear UnavailableError naming the endpoint', async () => {
    const dead = 'http://127.0.0.1:1';
    const err = await runCensus({
      etcd: { ...etcdOptionsFrom({ etcdEndpoints: dead }), timeoutMs: 3000 },
      resources: ['secrets'],
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toContain('127.0.0.1:1');
    expect((err as Error).message).toContain('--etcd-endpoints');
  });
});

describeEtcd('census over a real etcd with TLS client auth', () => {
  let etcd: TestEtcd;

  beforeAll(async () => {
    etcd = await startEtcd({ tls: true });
    const c = etcd.client();
    try {
      for (let i = 0; i < 12; i++) await c.put(`/registry/secrets/ns/s${i}`).value(identityValue(`s${i}`));
    } finally {
      c.close();
    }
  }, T);
  afterAll(async () => etcd?.stop(), T);

  const flags = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
    etcdEndpoints: etcd.endpoint,
    etcdCafile: etcd.pki!.file('ca.crt'),
    etcdCertfile: etcd.pki!.file('client.crt'),
    etcdKeyfile: etcd.pki!.file('client.key'),
    ...over,
  });

  it('reads with the CA and client certificate kube-apiserver would use', async () => {
    const r = await runCensus({ etcd: etcdOptionsFrom(flags()), resources: ['secrets'], pageSize: 5 });
    expect(r.total).toBe(12);
    expect(r.groups).toEqual([{ resource: 'secrets', protection: 'identity', count: 12 }]);
  });

  it('a wrong CA is a clear TLS error pointing at --etcd-cafile', async () => {
    const other = createTestPki({ caName: 'some other CA' });
    try {
      const err = await connectEtcd({
        ...etcdOptionsFrom(flags({ etcdCafile: other.file('ca.crt') })),
        timeoutMs: 5000,
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnavailableError);
      expect((err as Error).message).toMatch(/--etcd-cafile/);
    } finally {
      other.remove();
    }
  });

  it('without a client certificate etcd refuses, and the error says which flags to check', async () => {
    const err = await connectEtcd({
      ...etcdOptionsFrom(flags({ etcdCertfile: undefined, etcdKeyfile: undefined })),
      timeoutMs: 5000,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toMatch(/refused the client certificate.*--etcd-certfile/);
  });

  it('unreadable or non-PEM files and half a client pair are ConfigErrors naming the flag', async () => {
    await expect(connectEtcd(etcdOptionsFrom(flags({ etcdCafile: '/nonexistent/ca.crt' })))).rejects.toThrow(
      /--etcd-cafile.*cannot read \/nonexistent\/ca\.crt \(ENOENT\)/,
    );
    const notPem = join(etcd.pki!.dir, 'not.pem');
    writeFileSync(notPem, 'hello');
    await expect(connectEtcd(etcdOptionsFrom(flags({ etcdKeyfile: notPem })))).rejects.toThrow(
      /--etcd-keyfile.*not a PEM/,
    );
    expect(() => etcdOptionsFrom(flags({ etcdKeyfile: undefined }))).toThrow(ConfigError);
    expect(() => etcdOptionsFrom({})).toThrow(/--etcd-endpoints/);
    expect(() => etcdOptionsFrom({ etcdEndpoints: 'ftp://x' })).toThrow(/--etcd-endpoints/);
  });
});

describe('census flags without etcd', () => {
  it('refuses an EncryptionConfiguration that is not one, naming the flag', async () => {
    const d = tempDir('kkp-census-cfg-');
    try {
      const f = join(d.path, 'x.yaml');
      writeFileSync(f, 'kind: Something\n');
      await expect(
        runCensus({ etcd: etcdOptionsFrom({ etcdEndpoints: 'http://127.0.0.1:1' }), encryptionConfig: f }),
      ).rejects.toThrow(/--encryption-config.*not an EncryptionConfiguration/);
    } finally {
      d.cleanup();
    }
  });
});
