/**
 * `render` for a matrix of configs: every output parses and validates (Kubernetes schema for Pods,
 * strict validators for the rest), the socket/health/file wiring follows the config, and bad
 * options fail with a message naming the option. The validators themselves are shown to catch
 * each broken variant (so a passing run means something).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { parse, parseAllDocuments } from 'yaml';
import { goDuration, parseTimeout } from '../../src/cli/render/options.js';
import { runRender } from './run-render.js';
import {
  parseUnit,
  validateEncryptionConfiguration,
  validateKubeadmClusterConfiguration,
  validateKubeadmControlPlane,
  validatePluginPod,
  validatePodSchema,
} from './validate.js';

const dir = mkdtempSync(join(tmpdir(), 'render-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function configFile(name: string, yaml: string): string {
  const p = join(dir, `${name}.yaml`);
  writeFileSync(p, yaml);
  return p;
}

const CONFIGS: Record<string, string> = {
  local: configFile('local', 'provider: local\nlocal:\n  keyFile: /etc/k8s-kms-plugin/keys.json\n'),
  abstract: configFile(
    'abstract',
    'listen: unix:///@kms-test\nstatusVersion: v2beta1\nprovider: local\nlocal:\n  keyFile: /etc/kms/keys.json\n',
  ),
  custom: configFile(
    'custom',
    'listen: unix:///srv/kms/run/plugin.sock\nhealthAddr: 0.0.0.0:9443\nsocketGroup: 2000\nshutdownTimeout: 30s\nprovider: local\nlocal:\n  keyFile: /srv/kms/keys.json\n',
  ),
  vault: configFile(
    'vault',
    [
      'provider: vault',
      'vault:',
      '  address: https://vault.internal:8200',
      '  keyName: kek',
      '  tls:',
      '    caFile: /etc/kms/vault-ca.pem',
      '  auth:',
      '    method: approle',
      '    roleIdFile: /etc/kms/role-id',
      '    secretIdFile: /etc/kms/secret-id',
      'decryptOnly:',
      '  - provider: local',
      '    local:',
      '      keyFile: /etc/kms/old-keys.json',
      '',
    ].join('\n'),
  ),
};

const TARGETS = ['static-pod', 'encryption-config', 'kubeadm', 'capi', 'systemd'] as const;

async function renderAll(config: string, extra: string[] = []) {
  const out: Record<string, string> = {};
  for (const t of TARGETS) out[t] = await runRender(['render', t, '--config', config, ...extra]);
  return out;
}

function socketOfEndpoint(endpoint: string): string {
  return endpoint.slice('unix://'.length);
}

describe('render outputs validate and agree with each other', () => {
  it.each(Object.keys(CONFIGS).map((k) => [k]))('config %s', async (name) => {
    const out = await renderAll(CONFIGS[name], ['--name', `kms-${name}`, '--image', 'example.org/kms:1']);
    const pod = validatePluginPod(parse(out['static-pod']));
    const enc = validateEncryptionConfiguration(parse(out['encryption-config']));
    const kubeadm = validateKubeadmClusterConfiguration(parse(out.kubeadm));
    const capi = validateKubeadmControlPlane(parse(out.capi));
    expect([pod.errs, enc.errs, kubeadm.errs, capi.errs]).toEqual([[], [], [], []]);

    const endpoint = enc.kms[0].endpoint;
    const socket = socketOfEndpoint(endpoint);
    const unit = parseUnit(out.systemd);
    if (socket.startsWith('/@')) {
      expect(pod.facts.socketDirs).toEqual([]);
      expect(kubeadm.apiServer.volumes.map((v) => v.name)).toEqual(['encryption-config']);
      expect(unit.get('Service')?.has('RuntimeDirectory')).toBe(false);
    } else {
      const sockDir = socket.slice(0, socket.lastIndexOf('/'));
      expect(pod.facts.socketDirs).toEqual([sockDir]);
      for (const vols of [kubeadm.apiServer.volumes, capi.facts.apiServer.volumes]) {
        expect(vols.some((v) => v.hostPath === sockDir && v.mountPath === sockDir)).toBe(true);
      }
    }
    // The CAPI static pod and EncryptionConfiguration are the same documents as the standalone ones.
    const inline = capi.facts.files
      .filter((f) => typeof f.content === 'string')
      .map((f) => String(f.content));
    expect(inline).toContain(out['encryption-config'].replace(/^#.*\n/gm, ''));
    expect(inline).toContain(out['static-pod'].replace(/^#.*\n/gm, ''));
  });

  it('mounts exactly the files the config names, read-only, and sources them from Secrets in CAPI', async () => {
    const out = await renderAll(CONFIGS.vault, ['--name', 'kms-vault']);
    const pod = parse(out['static-pod']) as {
      spec: { volumes: Array<{ name: string; hostPath: { path: string; type: string } }> };
    };
    const files = pod.spec.volumes.filter((v) => v.hostPath.type === 'File').map((v) => v.hostPath.path);
    expect(files.sort()).toEqual(
      [
        '/etc/k8s-kms-plugin/config.yaml',
        '/etc/kms/old-keys.json',
        '/etc/kms/role-id',
        '/etc/kms/secret-id',
        '/etc/kms/vault-ca.pem',
      ].sort(),
    );
    const capi = validateKubeadmControlPlane(parse(out.capi)).facts;
    for (const path of files) {
      const f = capi.files.find((x) => x.path === path);
      expect([path, f?.contentFrom !== undefined, f?.content]).toEqual([path, true, undefined]);
      expect([path, f?.owner, f?.permissions]).toEqual([path, '65532:65532', '0600']);
    }
    // Nothing from the plugin config itself is inlined (it may hold credentials in other setups).
    expect(out.capi).not.toContain('vault.internal');
  });

  it('follows the health address: probe port and host', async () => {
    const custom = validatePluginPod(
      parse(await runRender(['render', 'static-pod', '--config', CONFIGS.custom])),
    );
    expect(custom.errs).toEqual([]);
    expect(custom.facts.probes.map((p) => [p.port, p.host])).toEqual([
      [9443, undefined],
      [9443, undefined],
      [9443, undefined],
    ]);
    const viaEnv = validatePluginPod(
      parse(
        await runRender(['render', 'static-pod', '--config', CONFIGS.local], {
          KMS_PLUGIN_HEALTH_ADDR: '127.0.0.2:7070',
        }),
      ),
    );
    expect(viaEnv.facts.probes.map((p) => [p.port, p.host])[0]).toEqual([7070, '127.0.0.2']);
    const viaFlag = parse(
      await runRender([
        'render',
        'encryption-config',
        '--config',
        CONFIGS.local,
        '--listen',
        'unix:///@flagged',
      ]),
    );
    expect(validateEncryptionConfiguration(viaFlag).kms[0].endpoint).toBe('unix:///@flagged');
  });

  it('a socket group becomes a supplemental group of the pod (numeric only)', async () => {
    const pod = parse(
      await runRender(['render', 'static-pod', '--config', CONFIGS.local, '--socket-group', '1234']),
    );
    expect(validatePluginPod(pod).errs).toEqual([]);
    expect(pod.spec.securityContext.supplementalGroups).toEqual([1234]);
    const plain = parse(await runRender(['render', 'static-pod', '--config', CONFIGS.local]));
    expect(plain.spec.securityContext.supplementalGroups).toBeUndefined();
    await expect(
      runRender(['render', 'static-pod', '--config', CONFIGS.local, '--socket-group', 'kube']),
    ).rejects.toThrow(/--socket-group: the static pod needs a numeric gid \(got "kube"\)/);
  });

  it('emits the options: name, timeout, resources, identity last, no cachesize', async () => {
    const text = await runRender([
      'render',
      'encryption-config',
      '--config',
      CONFIGS.local,
      '--name',
      'prod-kms',
      '--timeout',
      '1500ms',
      '--resources',
      'secrets, configmaps,widgets.example.com',
    ]);
    expect(text).not.toMatch(/cachesize/i);
    expect(parse(text)).toEqual({
      apiVersion: 'apiserver.config.k8s.io/v1',
      kind: 'EncryptionConfiguration',
      resources: [
        {
          resources: ['secrets', 'configmaps', 'widgets.example.com'],
          providers: [
            {
              kms: {
                apiVersion: 'v2',
                name: 'prod-kms',
                endpoint: 'unix:///var/run/kmsplugin/kms.sock',
                timeout: '1.5s',
              },
            },
            { identity: {} },
          ],
        },
      ],
    });
  });

  it('kubeadm v1beta4 uses a name/value list, v1beta3 a map', async () => {
    const v4 = parse(
      await runRender([
        'render',
        'kubeadm',
        '--config',
        CONFIGS.local,
        '--encryption-config-path',
        '/etc/k/enc.yaml',
      ]),
    );
    const v3 = parse(
      await runRender([
        'render',
        'kubeadm',
        '--config',
        CONFIGS.local,
        '--kubeadm-api',
        'v1beta3',
        '--encryption-config-path',
        '/etc/k/enc.yaml',
      ]),
    );
    expect(v4.apiVersion).toBe('kubeadm.k8s.io/v1beta4');
    expect(v4.apiServer.extraArgs).toEqual([
      { name: 'encryption-provider-config', value: '/etc/k/enc.yaml' },
    ]);
    expect(v3.apiVersion).toBe('kubeadm.k8s.io/v1beta3');
    expect(v3.apiServer.extraArgs).toEqual({ 'encryption-provider-config': '/etc/k/enc.yaml' });
    expect(v4.apiServer.extraVolumes[0]).toEqual({
      name: 'encryption-config',
      hostPath: '/etc/k',
      mountPath: '/etc/k',
      readOnly: true,
      pathType: 'DirectoryOrCreate',
    });
  });

  it('systemd: RuntimeDirectory for /run sockets, ReadWritePaths otherwise, socket group, stop timeout', async () => {
    const local = parseUnit(await runRender(['render', 'systemd', '--config', CONFIGS.local])).get('Service');
    expect(local?.get('RuntimeDirectory')).toEqual(['kmsplugin']);
    expect(local?.get('ReadWritePaths')).toBeUndefined();
    const custom = parseUnit(
      await runRender([
        'render',
        'systemd',
        '--config',
        CONFIGS.custom,
        '--user',
        'kms',
        '--binary',
        '/opt/kms/bin/k8s-kms-plugin',
      ]),
    );
    const svc = custom.get('Service');
    expect(svc?.get('ReadWritePaths')).toEqual(['/srv/kms/run']);
    expect(svc?.get('SupplementaryGroups')).toEqual(['2000']);
    expect(svc?.get('TimeoutStopSec')).toEqual(['35s']);
    expect(svc?.get('User')).toEqual(['kms']);
    expect(svc?.get('ExecStart')).toEqual([
      '/opt/kms/bin/k8s-kms-plugin serve --config /etc/k8s-kms-plugin/config.yaml',
    ]);
    expect(custom.get('Unit')?.get('Before')).toEqual(['kubelet.service']);
    expect(custom.get('Install')?.get('WantedBy')).toEqual(['multi-user.target', 'kubelet.service']);
  });
});

describe('render errors name the option', () => {
  it.each([
    [['render', 'encryption-config', '--name', 'a:b'], /--name: "a:b" is not a valid provider name/],
    [['render', 'encryption-config', '--timeout', '0s'], /--timeout/],
    [['render', 'encryption-config', '--resources', ','], /--resources/],
    [
      ['render', 'static-pod', '--health-addr', ''],
      /--health-addr: render static-pod needs the health endpoints/,
    ],
    [['render', 'nonsense'], /unknown target "nonsense"/],
    [['render', 'kubeadm', '--kubeadm-api', 'v1beta2'], /Allowed choices are v1beta3, v1beta4/],
    [['render', 'static-pod', '--node-config', 'relative.yaml'], /--node-config/],
  ])('%j', async (argv, message) => {
    await expect(runRender([...argv, '--config', CONFIGS.local])).rejects.toThrow(message);
  });

  it('a relative file path in the config cannot be mounted', async () => {
    const bad = configFile('relative', 'provider: local\nlocal:\n  keyFile: keys.json\n');
    await expect(runRender(['render', 'static-pod', '--config', bad])).rejects.toThrow(
      /local\.keyFile: "keys\.json" must be an absolute path/,
    );
  });

  it('an invalid config is reported like serve would', async () => {
    const bad = configFile('bad', 'provider: local\n');
    await expect(runRender(['render', 'static-pod', '--config', bad])).rejects.toThrow(
      /local: provider is "local" but the "local:" section is missing/,
    );
  });
});

describe('durations', () => {
  it('formats and parses timeouts', () => {
    expect([500, 1000, 1500, 3000, 90_000, 3_600_000].map(goDuration)).toEqual([
      '500ms',
      '1s',
      '1.5s',
      '3s',
      '1m30s',
      '1h',
    ]);
    expect(parseTimeout('3s')).toBe(3000);
    expect(parseTimeout('2')).toBe(2000);
    expect(() => parseTimeout('soon')).toThrow(/--timeout/);
  });
});

describe('the validators catch broken documents', () => {
  async function base() {
    return {
      pod: parse(await runRender(['render', 'static-pod', '--config', CONFIGS.local])),
      enc: parse(await runRender(['render', 'encryption-config', '--config', CONFIGS.local])),
      kubeadm: parse(await runRender(['render', 'kubeadm', '--config', CONFIGS.local])),
      capi: parse(await runRender(['render', 'capi', '--config', CONFIGS.local])),
    };
  }

  it('Pod: schema types and our security rules', async () => {
    const { pod } = await base();
    expect(validatePluginPod(pod).errs).toEqual([]);
    const mutate = (f: (p: typeof pod) => void) => {
      const copy = structuredClone(pod);
      f(copy);
      return validatePluginPod(copy).errs.join('\n');
    };
    expect(validatePodSchema({ ...pod, spec: { ...pod.spec, hostNetwork: 'yes' } }).join()).toMatch(
      /hostNetwork must be boolean/,
    );
    expect(mutate((p) => (p.spec.containers[0].ports[0].containerPort = 'http'))).toMatch(/must be integer/);
    expect(mutate((p) => (p.spec.hostNetwork = false))).toMatch(/hostNetwork/);
    expect(mutate((p) => delete p.spec.priorityClassName)).toMatch(/system-node-critical/);
    expect(mutate((p) => (p.spec.containers[0].securityContext.readOnlyRootFilesystem = false))).toMatch(
      /readOnlyRootFilesystem/,
    );
    expect(mutate((p) => (p.spec.containers[0].securityContext.capabilities.drop = ['NET_RAW']))).toMatch(
      /drops ALL/,
    );
    expect(mutate((p) => (p.spec.containers[0].livenessProbe.httpGet.path = '/healthz'))).toMatch(
      /liveness on \/livez/,
    );
    expect(mutate((p) => (p.spec.containers[0].readinessProbe.httpGet.port = 9999))).toMatch(
      /readinessProbe port 9999 is the health port 8086/,
    );
    expect(mutate((p) => delete p.spec.containers[0].volumeMounts[1].readOnly)).toMatch(/readOnly/);
  });

  it('EncryptionConfiguration: v2, no cachesize, name without ":", identity last, no unknown fields', async () => {
    const { enc } = await base();
    const kms = () => enc.resources[0].providers[0].kms;
    const check = (f: () => void) => {
      const saved = structuredClone(enc);
      f();
      const errs = validateEncryptionConfiguration(enc).errs.join('\n');
      Object.assign(enc, structuredClone(saved));
      return errs;
    };
    expect(check(() => delete kms().apiVersion)).toMatch(/apiVersion must be v2/);
    expect(check(() => (kms().cachesize = 1000))).toMatch(/cachesize must not be set/);
    expect(check(() => (kms().name = 'a:b'))).toMatch(/no ':'/);
    expect(check(() => (kms().endpoint = 'unix://var/run/x.sock'))).toMatch(/endpoint/);
    expect(check(() => (kms().timeout = '0s'))).toMatch(/timeout/);
    expect(check(() => (kms().typo = 1))).toMatch(/kms\.typo: unknown field/);
    expect(check(() => enc.resources[0].providers.reverse())).toMatch(/identity last/);
  });

  it('kubeadm and KubeadmControlPlane: shapes per API version, unknown fields, file sources', async () => {
    const { kubeadm, capi } = await base();
    expect(
      validateKubeadmClusterConfiguration({ ...kubeadm, apiVersion: 'kubeadm.k8s.io/v1beta3' }).errs.join(),
    ).toMatch(/a map of flag name to value/);
    expect(
      validateKubeadmClusterConfiguration({
        ...kubeadm,
        apiServer: { ...kubeadm.apiServer, extraVolume: [] },
      }).errs.join(),
    ).toMatch(/unknown field/);
    const badVol = structuredClone(kubeadm);
    badVol.apiServer.extraVolumes[0].pathType = 'Folder';
    expect(validateKubeadmClusterConfiguration(badVol).errs.join()).toMatch(/HostPathType/);
    const both = structuredClone(capi);
    both.spec.kubeadmConfigSpec.files[0].contentFrom = { secret: { name: 'x', key: 'y' } };
    expect(validateKubeadmControlPlane(both).errs.join()).toMatch(/exactly one of content and contentFrom/);
    const perm = structuredClone(capi);
    perm.spec.kubeadmConfigSpec.files[0].permissions = 600;
    expect(validateKubeadmControlPlane(perm).errs.join()).toMatch(/permissions/);
  });

  it('every rendered YAML is a single document', async () => {
    for (const t of ['static-pod', 'encryption-config', 'kubeadm', 'capi']) {
      expect([
        t,
        parseAllDocuments(await runRender(['render', t, '--config', CONFIGS.local])).length,
      ]).toEqual([t, 1]);
    }
  });
});
