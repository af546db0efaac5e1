/**
 * Retirement that cannot lose data, end to end through the CLI (dist/) against a real etcd:
 * `census` output and exit codes, `census --can-retire`, and `rotate --retire` refused (exit 3,
 * counts per resource) while objects are under the version, allowed once they were rewritten
 * under the new one; `--force` overrides with warnings.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { keygen } from '../../src/cli/keygen.js';
import { rotateKeyFile } from '../../src/cli/rotate.js';
import { KmsV2Writer, identityValue, secretObject } from '../support/apiserver-values.js';
import { describeEtcd } from '../support/describe-etcd.js';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { CLI, runCli, tempDir } from '../support/plugin-process.js';

const T = 60_000;

describeEtcd('census and rotate --retire through the CLI', () => {
  let etcd: TestEtcd;
  let writer: KmsV2Writer;
  const dir = tempDir('kkp-retire-');
  const keyFile = join(dir.path, 'kek.json');
  const encCfg = join(dir.path, 'enc.yaml');
  let keyIdV1 = '';
  let keyIdV2 = '';
  const etcdFlags = (): string[] => [
    '--etcd-endpoints',
    etcd.endpoint,
    '--etcd-cafile',
    etcd.pki!.file('ca.crt'),
    '--etcd-certfile',
    etcd.pki!.file('client.crt'),
    '--etcd-keyfile',
    etcd.pki!.file('client.key'),
  ];

  const census = (extra: string[]): ReturnType<typeof runCli> =>
    runCli(['census', ...etcdFlags(), '--encryption-config', encCfg, ...extra]);

  /** `rotate --retire 1` with the census flags, as an operator runs it. */
  const retire1 = (extra: string[]): ReturnType<typeof runCli> =>
    runCli([
      'rotate',
      '--local-key-file',
      keyFile,
      '--retire',
      '1',
      ...etcdFlags(),
      '--encryption-config',
      encCfg,
      ...extra,
    ]);

  async function putAll(n: number, resource: string, value: (k: string, i: number) => Buffer): Promise<void> {
    const c = etcd.client();
    try {
      for (let i = 0; i < n; i++) {
        const k = `/registry/${resource}/ns/o${i}`;
        await c.put(k).value(value(k, i));
      }
    } finally {
      c.close();
    }
  }

  beforeAll(async () => {
    etcd = await startEtcd({ tls: true });
    keygen(keyFile);
    writer = await KmsV2Writer.create(keyFile);
    keyIdV1 = writer.keyId;
    await putAll(12, 'secrets', (k, i) => writer.value(k, secretObject(`s${i}`)));
    await putAll(3, 'configmaps', (k, i) => writer.value(k, secretObject(`c${i}`, 'ConfigMap')));
    await putAll(2, 'deployments', (_k, i) => identityValue(`d${i}`));
    rotateKeyFile(keyFile);
    await writer.adoptPrimary();
    keyIdV2 = writer.keyId;
    writeFileSync(
      encCfg,
      [
        'apiVersion: apiserver.config.k8s.io/v1',
        'kind: EncryptionConfiguration',
        'resources:',
        '  - resources: [secrets, configmaps]',
        '    providers:',
        '      - kms: {apiVersion: v2, name: kms-plugin, endpoint: "unix:///var/run/kms.sock", timeout: 3s}',
        '      - identity: {}',
        '',
      ].join('\n'),
    );
  }, T);

  afterAll(async () => {
    await writer?.close();
    await etcd?.stop();
    dir.cleanup();
  }, T);

  it(
    'census prints a table per resource × protection, no progress bar off a TTY, and --json',
    async () => {
      const r = await runCli(['census', ...etcdFlags(), '--encryption-config', encCfg]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(
        new RegExp(`secrets\\s+kms-v2\\s+12\\s+provider=kms-plugin key_id=${keyIdV1} `),
      );
      expect(r.stdout).toMatch(/configmaps\s+kms-v2\s+3\s+.*kek=local:\S+ version=1/);
      expect(r.stdout).toMatch(/15 objects in 2 resources/);
      expect(r.stderr).toBe(''); // no progress bar (not a TTY), no warning
      const j = await runCli(['census', ...etcdFlags(), '--resource', 'secrets,deployments.apps', '--json']);
      expect(j.code).toBe(0);
      const report = JSON.parse(j.stdout) as {
        total: number;
        resources: Array<{ resource: string; count: number }>;
      };
      expect(report.total).toBe(14);
      expect(report.resources).toEqual([
        expect.objectContaining({ resource: 'secrets', count: 12 }),
        expect.objectContaining({ resource: 'deployments.apps', count: 2 }),
      ]);
    },
    T,
  );

  it(
    'on a terminal, census draws a progress bar (count, rate) on stderr',
    async () => {
      // a pseudo-terminal through util-linux `script`; skipped where it is missing
      const script = spawnSync('sh', ['-c', 'command -v script'], { encoding: 'utf8' }).stdout.trim();
      if (!script) return;
      const cmd = [
        process.execPath,
        CLI,
        'census',
        ...etcdFlags(),
        '--encryption-config',
        encCfg,
        '--page-size',
        '2',
      ]
        .map((a) => `'${a}'`)
        .join(' ');
      const r = spawnSync(script, ['-qec', cmd, '/dev/null'], { encoding: 'utf8', timeout: 30_000 });
      expect(r.status).toBe(0);
      expect(r.stdout).toContain('\r\x1b[2Kcensus [');
      expect(r.stdout).toMatch(/census \[#+\] 15\/15 100\.0% [\d.k]+\/s in \d+s/);
      expect(r.stdout).toContain('15 objects in 2 resources');
    },
    T,
  );

  it(
    'census exit codes: --fail-if-version, --expect-key-id, --can-retire exit 3 with counts',
    async () => {
      const fail = await census(['--fail-if-version', '1']);
      expect(fail.code).toBe(3);
      expect(fail.stdout).toContain('FAIL: 15 objects are still under 1 (secrets=12, configmaps=3)');
      const expectId = await census(['--expect-key-id', keyIdV2]);
      expect(expectId.code).toBe(3);
      const canRetire = await census(['--can-retire', '1']);
      expect(canRetire.code).toBe(3);
      expect(canRetire.stdout).toContain('REFUSED: 1 cannot be retired: 15 objects are still under it');
      const ok = await census(['--fail-if-version', '7']);
      expect(ok.code).toBe(0);
      const bad = await runCli(['census', ...etcdFlags()]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('--encryption-config');
    },
    T,
  );

  it(
    'rotate --retire refuses without etcd flags, and while objects are under the version (exit 3, per resource)',
    async () => {
      const noFlags = await runCli(['rotate', '--local-key-file', keyFile, '--retire', '1']);
      expect(noFlags.code).toBe(2);
      expect(noFlags.stderr).toContain('runs a census first');
      const refused = await retire1([]);
      expect(refused.code).toBe(3);
      expect(refused.stderr).toContain('REFUSED: 15 objects are still under version 1');
      expect(refused.stderr).toMatch(/secrets: 12\n\s+configmaps: 3/);
      // nothing was retired
      expect((JSON.parse(readFileSync(keyFile, 'utf8')) as { keys: unknown[] }).keys).toHaveLength(2);
    },
    T,
  );

  it(
    'after every object is rewritten under the new version, the census proves it and retirement succeeds',
    async () => {
      // what reencrypt does through the API: the apiserver rewrites each object under the current key_id
      await putAll(12, 'secrets', (k, i) => writer.value(k, secretObject(`s${i}`)));
      await putAll(3, 'configmaps', (k, i) => writer.value(k, secretObject(`c${i}`, 'ConfigMap')));
      const expectId = await census(['--expect-key-id', keyIdV2]);
      expect(expectId.code).toBe(0);
      expect(expectId.stdout).toContain(`OK: every object is under key_id ${keyIdV2}`);
      const retired = await retire1(['--json']);
      expect(retired.code).toBe(0);
      expect(JSON.parse(retired.stdout)).toMatchObject({
        action: 'retired',
        version: 1,
        versions: [2],
        census: { total: 0, byResource: {} },
      });
    },
    T,
  );

  it(
    '--force retires with objects still under the version, and warns about them and backups',
    async () => {
      rotateKeyFile(keyFile); // 3
      const forced = await runCli([
        'rotate',
        '--local-key-file',
        keyFile,
        '--retire',
        '2',
        '--force',
        ...etcdFlags(),
        '--resource',
        'secrets',
      ]);
      expect(forced.code).toBe(0);
      expect(forced.stderr).toContain('warning: --force: 12 objects are still under version 2');
      expect(forced.stderr).toContain('backups');
      expect(forced.stdout).toContain('retired version 2');
    },
    T,
  );
});
