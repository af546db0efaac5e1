/**
 * `render sidecar`: both documents validate against the Kubernetes schemas (kubernetes-models:
 * Container and apps/v1 Deployment), and the wiring follows the configs: shared emptyDir per
 * socket directory, probes on each instance's own health port (or none), resources and
 * securityContext identical to the static pod's, socket group for a non-root apiserver, several
 * instances, and refusals that name the option. `render daemonset|deployment` are refused.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Container } from 'kubernetes-models/v1/Container';
import { parse, parseAllDocuments } from 'yaml';
import { runRender } from './run-render.js';

const dir = mkdtempSync(join(tmpdir(), 'render-sidecar-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

const OLD = file(
  'old.yaml',
  'provider: local\nhealthAddr: 127.0.0.1:8086\nlocal:\n  keyFile: /etc/kms/keys.json\n',
);
const NEW = file(
  'new.yaml',
  [
    'listen: unix:///var/run/kmsplugin/new.sock',
    'healthAddr: 127.0.0.1:8087',
    'provider: vault',
    'vault:',
    '  address: https://vault.internal:8200',
    '  keyName: kek',
    '  auth:',
    '    method: approle',
    '    roleIdFile: /etc/kms-new/role-id',
    '    secretIdFile: /etc/kms-new/secret-id',
    '',
  ].join('\n'),
);

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

async function sidecar(args: string[]): Promise<{ containers: Obj[]; deployment: Obj }> {
  const text = await runRender([
    'render',
    'sidecar',
    '--hosted-by',
    'mgmt',
    '--cluster',
    'tenant-a',
    ...args,
  ]);
  const docs = parseAllDocuments(text).map((d) => d.toJSON() as unknown);
  expect(docs).toHaveLength(2);
  const containers = docs[0] as Obj[];
  for (const c of containers) new Container(c as never).validate();
  new Deployment(docs[1] as Obj).validate();
  return { containers, deployment: docs[1] as Obj };
}

function podOf(d: Obj): Obj {
  return d.spec.template.spec;
}

describe('render sidecar', () => {
  it('one instance: native sidecar, shared emptyDir, probes on the pod-IP health port, static-pod security', async () => {
    const { containers, deployment } = await sidecar(['--config', OLD, '--image', 'example.org/kms:1']);
    expect(containers).toHaveLength(1);
    const [c] = containers;
    const pod = podOf(deployment);
    expect(pod.initContainers).toEqual(containers);
    expect(c.restartPolicy).toBe('Always');
    expect(c.args).toEqual([
      'serve',
      '--config',
      '/etc/k8s-kms-plugin/config.yaml',
      '--health-addr',
      '0.0.0.0:8086',
    ]);
    for (const p of ['startupProbe', 'livenessProbe', 'readinessProbe']) expect(c[p].httpGet.port).toBe(8086);
    expect(c.livenessProbe.httpGet.path).toBe('/livez');
    expect(c.readinessProbe.httpGet.path).toBe('/readyz');
    expect(c.ports).toEqual([{ name: 'kms-health', containerPort: 8086, protocol: 'TCP' }]);

    // Same resources and securityContext as the static pod's container.
    const staticPod = parse(await runRender(['render', 'static-pod', '--config', OLD]));
    const sp = staticPod.spec.containers[0];
    expect([c.resources, c.securityContext]).toEqual([sp.resources, sp.securityContext]);

    // The socket directory is an emptyDir mounted into both containers.
    const api = pod.containers.find((x: Obj) => x.name === 'kube-apiserver');
    const socketVol = pod.volumes.find((v: Obj) => v.emptyDir);
    const mountOf = (x: Obj) => x.volumeMounts.find((m: Obj) => m.name === socketVol.name)?.mountPath;
    expect([mountOf(c), mountOf(api)]).toEqual(['/var/run/kmsplugin', '/var/run/kmsplugin']);
    expect(api.args).toContain('--encryption-provider-config=/etc/kubernetes/enc/encryption-config.yaml');
    // Files come from Secret volumes mounted as directories (no subPath: rotations reach the plugin).
    const secretMounts = c.volumeMounts.filter(
      (m: Obj) => pod.volumes.find((v: Obj) => v.name === m.name)?.secret,
    );
    expect(secretMounts.map((m: Obj) => [m.mountPath, m.readOnly, m.subPath])).toEqual([
      ['/etc/k8s-kms-plugin', true, undefined],
      ['/etc/kms', true, undefined],
    ]);
    expect(pod.securityContext.fsGroup).toBe(65532);
  });

  it('two instances share the pod, each with its own socket and health port', async () => {
    const { containers, deployment } = await sidecar([
      '--config',
      OLD,
      '--name',
      'kms-old',
      '--instance',
      `kms-new=${NEW}`,
    ]);
    expect(containers.map((c) => c.name)).toEqual(['kms-kms-old', 'kms-kms-new']);
    expect(containers.map((c) => c.args.at(-1))).toEqual(['0.0.0.0:8086', '0.0.0.0:8087']);
    expect(containers.map((c) => c.readinessProbe.httpGet.port)).toEqual([8086, 8087]);
    expect(containers.map((c) => c.ports[0].name)).toEqual(['kms-health', 'kms-health-2']);
    expect(containers[1].args.slice(0, 3)).toEqual([
      'serve',
      '--config',
      '/etc/k8s-kms-plugin/kms-new/config.yaml',
    ]);
    const pod = podOf(deployment);
    // One shared socket directory, mounted once into the apiserver.
    expect(pod.volumes.filter((v: Obj) => v.emptyDir)).toHaveLength(1);
    const names = pod.volumes.map((v: Obj) => v.name);
    expect(new Set(names).size).toBe(names.length);
    const secrets = pod.volumes
      .filter((v: Obj) => v.secret)
      .map((v: Obj) => v.secret.items.map((i: Obj) => i.key));
    expect(secrets).toContainEqual(['role-id', 'secret-id']);
  });

  it('health disabled: no port, no probes, the listener off', async () => {
    const off = file('off.yaml', 'provider: local\nhealthAddr: ""\nlocal:\n  keyFile: /etc/kms/keys.json\n');
    const { containers } = await sidecar(['--config', off]);
    expect(containers[0].args.slice(-2)).toEqual(['--health-addr', '']);
    expect([containers[0].ports, containers[0].livenessProbe, containers[0].startupProbe]).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
  });

  it('a non-root apiserver: the socket must be group-accessible to its gid; the pod joins that group', async () => {
    await expect(
      runRender(['render', 'sidecar', '--config', OLD, '--hosted-by', 'm', '--apiserver-uid', '1001']),
    ).rejects.toThrow(
      /--socket-group: .*uid 1001 \(gid 1001\) .*set socketGroup: 1001 and socketMode: "0660"/,
    );
    const grp = file(
      'grp.yaml',
      'provider: local\nsocketGroup: 1001\nsocketMode: "0660"\nlocal:\n  keyFile: /etc/kms/keys.json\n',
    );
    const { deployment } = await sidecar(['--config', grp, '--apiserver-uid', '1001', '--no-native-sidecar']);
    const pod = podOf(deployment);
    expect(pod.securityContext).toEqual({ fsGroup: 65532, supplementalGroups: [1001] });
    expect(pod.initContainers).toBeUndefined();
    expect(pod.containers.map((c: Obj) => c.name)).toEqual(['kube-apiserver', 'k8s-kms-plugin']);
    expect(pod.containers[0].securityContext).toMatchObject({ runAsUser: 1001, runAsGroup: 1001 });
  });

  it.each([
    [['--instance', `dup=${OLD}`], /same socket .*give each instance its own/],
    [
      [
        '--instance',
        `x=${file('port.yaml', 'listen: unix:///var/run/kmsplugin/x.sock\nhealthAddr: 127.0.0.1:8086\nprovider: local\nlocal:\n  keyFile: /etc/x/k.json\n')}`,
      ],
      /both use health port 8086/,
    ],
    [['--instance', 'no-equals-sign'], /--instance: expected NAME=CONFIG/],
    [['--instance', `k8s-kms-plugin=${NEW}`], /used twice/],
  ])('refuses %j', async (extra, message) => {
    await expect(
      runRender(['render', 'sidecar', '--config', OLD, '--hosted-by', 'mgmt', ...(extra as string[])]),
    ).rejects.toThrow(message as RegExp);
  });
});

describe('the shapes that deadlock the protected cluster are refused', () => {
  it('a sidecar needs to know who runs the apiserver, and refuses the protected cluster itself', async () => {
    await expect(runRender(['render', 'sidecar', '--config', OLD])).rejects.toThrow(
      /--hosted-by: name the cluster that runs this kube-apiserver Deployment/,
    );
    await expect(
      runRender(['render', 'sidecar', '--config', OLD, '--cluster', 'prod', '--hosted-by', 'prod']),
    ).rejects.toThrow(/would run in "prod" itself: after a full restart/);
  });

  it.each([['daemonset'], ['deployment']])('render %s explains why it does not exist', async (t) => {
    await expect(runRender(['render', t, '--config', OLD])).rejects.toThrow(
      new RegExp(`refusing to render a ${t} of the plugin: .*deadlocks after a full restart`),
    );
  });

  it('the validators catch a broken document', async () => {
    const { containers, deployment } = await sidecar(['--config', OLD]);
    expect(() =>
      new Container({ ...containers[0], ports: [{ containerPort: 'x' }] } as never).validate(),
    ).toThrow();
    const broken = structuredClone(deployment);
    delete broken.spec.selector;
    expect(() => new Deployment(broken).validate()).toThrow(/selector/);
  });
});
