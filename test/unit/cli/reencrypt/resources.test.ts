import { KubeError, type KubeRequest, type KubeTransport } from '../../../../src/cli/reencrypt/kube.js';
import { Discovery, listPath, objectPath } from '../../../../src/cli/reencrypt/resources.js';

/** Discovery documents served from a table. */
class Docs implements KubeTransport {
  readonly server = 'https://fake';
  readonly paths: string[] = [];
  constructor(private readonly docs: Record<string, unknown>) {}
  async request<T>(req: KubeRequest): Promise<T> {
    this.paths.push(req.path);
    const d = this.docs[req.path];
    if (d === undefined) throw new KubeError(404, 'NotFound', 'not found');
    return d as T;
  }
}

const all = ['get', 'list', 'update', 'create', 'delete', 'patch', 'watch'];
const docs = new Docs({
  '/api': { versions: ['v1'] },
  '/apis': {
    groups: [
      { name: 'apps', preferredVersion: { version: 'v1' }, versions: [{ version: 'v1' }] },
      {
        name: 'metrics.k8s.io',
        preferredVersion: { version: 'v1beta1' },
        versions: [{ version: 'v1beta1' }],
      },
      {
        name: 'storagemigration.k8s.io',
        preferredVersion: { version: 'v1beta1' },
        versions: [{ version: 'v1beta1' }, { version: 'v1alpha1' }],
      },
    ],
  },
  '/api/v1': {
    resources: [
      { name: 'secrets', namespaced: true, kind: 'Secret', verbs: all },
      { name: 'configmaps', namespaced: true, kind: 'ConfigMap', verbs: all },
      { name: 'pods/status', namespaced: true, kind: 'Pod', verbs: ['get', 'update'] },
      { name: 'bindings', namespaced: true, kind: 'Binding', verbs: ['create'] },
      { name: 'namespaces', namespaced: false, kind: 'Namespace', verbs: all },
    ],
  },
  '/apis/apps/v1': { resources: [{ name: 'deployments', namespaced: true, kind: 'Deployment', verbs: all }] },
  '/apis/metrics.k8s.io/v1beta1': {
    resources: [{ name: 'pods', namespaced: true, kind: 'PodMetrics', verbs: ['get', 'list'] }],
  },
  '/apis/storagemigration.k8s.io/v1beta1': {
    resources: [
      { name: 'storageversionmigrations', namespaced: false, kind: 'StorageVersionMigration', verbs: all },
    ],
  },
});

describe('Discovery.resolve', () => {
  test('names resolve to group, preferred version, kind and scope', async () => {
    const { targets } = await new Discovery(docs).resolve(
      ['secrets', 'deployments.apps', 'namespaces.'],
      true,
    );
    expect(targets.map((t) => [t.id, t.group, t.version, t.kind, t.namespaced])).toEqual([
      ['secrets', '', 'v1', 'Secret', true],
      ['deployments.apps', 'apps', 'v1', 'Deployment', true],
      ['namespaces', '', 'v1', 'Namespace', false],
    ]);
  });

  test('*. / *.G / *.*: every resource that can be listed and updated; never subresources; no duplicates', async () => {
    const d = new Discovery(docs);
    expect((await d.resolve(['*.'], true)).targets.map((t) => t.id)).toEqual([
      'secrets',
      'configmaps',
      'namespaces',
    ]);
    expect((await d.resolve(['*.apps'], true)).targets.map((t) => t.id)).toEqual(['deployments.apps']);
    expect((await d.resolve(['secrets', '*.*'], true)).targets.map((t) => t.id)).toEqual([
      'secrets',
      'configmaps',
      'namespaces',
      'deployments.apps',
      'storageversionmigrations.storagemigration.k8s.io',
    ]);
  });

  test('not served: an error with --resource (strict), skipped and reported with an EncryptionConfiguration', async () => {
    const d = new Discovery(docs);
    await expect(d.resolve(['secrets', 'widgets.example.com'], true)).rejects.toThrow(
      /does not serve "widgets.example.com"/,
    );
    const r = await d.resolve(['secrets', 'widgets.example.com'], false);
    expect(r.missing).toEqual(['widgets.example.com']);
    expect(r.targets.map((t) => t.id)).toEqual(['secrets']);
  });

  test('served versions of a group', async () => {
    const d = new Discovery(docs);
    expect(await d.groupVersions('storagemigration.k8s.io')).toEqual(['v1beta1', 'v1alpha1']);
    expect(await d.groupVersions('nope')).toEqual([]);
  });
});

test('paths: core vs group, namespaced vs cluster-scoped, names escaped', () => {
  const secrets = {
    id: 'secrets',
    group: '',
    version: 'v1',
    resource: 'secrets',
    kind: 'Secret',
    namespaced: true,
    verbs: [],
  };
  const ns = { ...secrets, id: 'namespaces', resource: 'namespaces', kind: 'Namespace', namespaced: false };
  const dep = {
    ...secrets,
    id: 'deployments.apps',
    group: 'apps',
    resource: 'deployments',
    kind: 'Deployment',
  };
  expect(listPath(secrets)).toBe('/api/v1/secrets');
  expect(listPath(dep)).toBe('/apis/apps/v1/deployments');
  expect(objectPath(secrets, 'kube-system', 'a:b')).toBe('/api/v1/namespaces/kube-system/secrets/a%3Ab');
  expect(objectPath(ns, undefined, 'default')).toBe('/api/v1/namespaces/default');
  expect(objectPath(dep, 'x', 'web')).toBe('/apis/apps/v1/namespaces/x/deployments/web');
});
