/**
 * Which etcd key prefixes hold which Kubernetes resources, as kube-apiserver lays them out under
 * --etcd-prefix: `<prefix>/<resource>/…` for built-in groups (with a few historical names, e.g.
 * nodes under `minions`), `<prefix>/<group>/<resource>/…` for custom resources and aggregated
 * groups. Resolves `--resource` lists and EncryptionConfiguration resource lists, expanding `*.G`
 * and `*.*` to the prefixes present in etcd.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../../errors.js';

export interface ResourceTarget {
  /** resource.group as EncryptionConfiguration names it ("secrets", "deployments.apps"). */
  resource: string;
  /** Path below --etcd-prefix, without slashes at the ends ("secrets", "services/specs"). */
  path: string;
}

/** Built-in resources whose storage path is not simply their resource name. */
const SPECIAL: Record<string, string> = {
  services: 'services/specs',
  endpoints: 'services/endpoints',
  nodes: 'minions',
  replicationcontrollers: 'controllers',
  'ingresses.networking.k8s.io': 'ingress',
  'ingresses.extensions': 'ingress',
  'podsecuritypolicies.policy': 'podsecuritypolicy',
  'customresourcedefinitions.apiextensions.k8s.io': 'apiextensions.k8s.io/customresourcedefinitions',
  'apiservices.apiregistration.k8s.io': 'apiregistration.k8s.io/apiservices',
  'events.events.k8s.io': 'events',
  'endpointslices.discovery.k8s.io': 'endpointslices',
};

/** The built-in resources kube-apiserver stores, by group ("" = core). Used to name what `*.G` finds. */
const BUILTIN: Record<string, string[]> = {
  '': [
    'configmaps',
    'endpoints',
    'events',
    'limitranges',
    'namespaces',
    'nodes',
    'persistentvolumeclaims',
    'persistentvolumes',
    'pods',
    'podtemplates',
    'replicationcontrollers',
    'resourcequotas',
    'secrets',
    'serviceaccounts',
    'services',
  ],
  apps: ['controllerrevisions', 'daemonsets', 'deployments', 'replicasets', 'statefulsets'],
  batch: ['cronjobs', 'jobs'],
  autoscaling: ['horizontalpodautoscalers'],
  policy: ['poddisruptionbudgets', 'podsecuritypolicies'],
  'rbac.authorization.k8s.io': ['clusterrolebindings', 'clusterroles', 'rolebindings', 'roles'],
  'networking.k8s.io': ['ingressclasses', 'ingresses', 'networkpolicies', 'ipaddresses', 'servicecidrs'],
  'storage.k8s.io': [
    'csidrivers',
    'csinodes',
    'csistoragecapacities',
    'storageclasses',
    'volumeattachments',
    'volumeattributesclasses',
  ],
  'scheduling.k8s.io': ['priorityclasses'],
  'coordination.k8s.io': ['leases', 'leasecandidates'],
  'discovery.k8s.io': ['endpointslices'],
  'node.k8s.io': ['runtimeclasses'],
  'certificates.k8s.io': ['certificatesigningrequests', 'clustertrustbundles'],
  'admissionregistration.k8s.io': [
    'mutatingwebhookconfigurations',
    'validatingadmissionpolicies',
    'validatingadmissionpolicybindings',
    'validatingwebhookconfigurations',
    'mutatingadmissionpolicies',
    'mutatingadmissionpolicybindings',
  ],
  'flowcontrol.apiserver.k8s.io': ['flowschemas', 'prioritylevelconfigurations'],
  'apiextensions.k8s.io': ['customresourcedefinitions'],
  'apiregistration.k8s.io': ['apiservices'],
  'resource.k8s.io': ['deviceclasses', 'resourceclaims', 'resourceclaimtemplates', 'resourceslices'],
  'storagemigration.k8s.io': ['storageversionmigrations'],
  'internal.apiserver.k8s.io': ['storageversions'],
};

const BUILTIN_GROUPS = new Set(Object.keys(BUILTIN));

/** "secrets" → {resource:"secrets", group:""}; "deployments.apps" → {…, group:"apps"}. */
export function splitResource(name: string): { resource: string; group: string } {
  const i = name.indexOf('.');
  return i < 0 ? { resource: name, group: '' } : { resource: name.slice(0, i), group: name.slice(i + 1) };
}

/** Storage path of a named resource (no wildcards). */
export function storagePath(name: string): string {
  const special = SPECIAL[name];
  if (special) return special;
  const { resource, group } = splitResource(name);
  if (group === '' || BUILTIN_GROUPS.has(group)) return resource;
  return `${group}/${resource}`;
}

/** Every built-in resource.group with its storage path. */
export function builtinTargets(): ResourceTarget[] {
  const out: ResourceTarget[] = [];
  for (const [group, names] of Object.entries(BUILTIN)) {
    for (const r of names) {
      const resource = group === '' ? r : `${r}.${group}`;
      out.push({ resource, path: storagePath(resource) });
    }
  }
  return out;
}

const NAME = /^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.(\*|[a-z0-9]([-a-z0-9.]*[a-z0-9])?))?\.?$/;

/** Parses "secrets,configmaps" (--resource). */
export function parseResourceList(flag: string, text: string): string[] {
  const names = text
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');
  if (names.length === 0) throw new ConfigError(flag, 'name at least one resource, e.g. secrets,configmaps');
  for (const n of names) {
    if (!NAME.test(n))
      throw new ConfigError(
        flag,
        `${JSON.stringify(n)} is not a resource name like secrets or deployments.apps`,
      );
  }
  return names;
}

/**
 * The resources an EncryptionConfiguration file lists (every `resources[].resources[]` entry),
 * in file order, without duplicates. Wildcards are kept for expandResources().
 */
export function resourcesFromEncryptionConfig(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      '--encryption-config',
      `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError('--encryption-config', `${path} is not valid YAML (${(err as Error).message})`);
  }
  const o = doc as { kind?: unknown; resources?: unknown } | null;
  if (!o || typeof o !== 'object' || o.kind !== 'EncryptionConfiguration' || !Array.isArray(o.resources)) {
    throw new ConfigError(
      '--encryption-config',
      `${path} is not an EncryptionConfiguration (kind: EncryptionConfiguration with a resources list)`,
    );
  }
  const names: string[] = [];
  for (const [i, entry] of (o.resources as unknown[]).entries()) {
    const list = (entry as { resources?: unknown } | null)?.resources;
    if (!Array.isArray(list))
      throw new ConfigError('--encryption-config', `${path}: resources[${i}].resources must be a list`);
    for (const n of list) {
      if (typeof n !== 'string' || !NAME.test(n.toLowerCase()))
        throw new ConfigError(
          '--encryption-config',
          `${path}: resources[${i}].resources has ${JSON.stringify(n)}, not a resource name`,
        );
      const name = n.toLowerCase();
      if (!names.includes(name)) names.push(name);
    }
  }
  if (names.length === 0) throw new ConfigError('--encryption-config', `${path} lists no resources`);
  return names;
}

/**
 * Names the storage paths present in etcd: `present` are the paths found below the prefix, one or
 * two segments deep ("secrets", "services/specs", "example.com/widgets").
 */
export function targetsForPresent(present: string[]): ResourceTarget[] {
  const byPath = new Map(builtinTargets().map((t) => [t.path, t.resource]));
  const out: ResourceTarget[] = [];
  const seen = new Set<string>();
  for (const path of present) {
    let resource = byPath.get(path);
    if (resource === undefined) {
      const parts = path.split('/');
      if (parts.length === 2 && parts[0].includes('.')) resource = `${parts[1]}.${parts[0]}`;
      else if (parts.length === 1) resource = parts[0];
      else continue;
    }
    if (seen.has(resource)) continue;
    seen.add(resource);
    out.push({ resource, path });
  }
  return out;
}

/**
 * Resolves names to targets. Exact names map to their storage path whether or not anything is
 * stored (they count 0). `*.G` is every present resource of group G (`*.` and `*` the core group),
 * `*.*` every present resource. A resource matched by an earlier entry is not repeated.
 */
export function expandResources(names: string[], present: ResourceTarget[]): ResourceTarget[] {
  const out: ResourceTarget[] = [];
  const seen = new Set<string>();
  const add = (t: ResourceTarget): void => {
    if (seen.has(t.resource)) return;
    seen.add(t.resource);
    out.push(t);
  };
  for (const raw of names) {
    const name = raw.replace(/\.$/, '');
    if (name === '*.*') {
      for (const t of present) add(t);
    } else if (name === '*' || name.startsWith('*.')) {
      const group = name === '*' ? '' : name.slice(2);
      for (const t of present) if (splitResource(t.resource).group === group) add(t);
    } else {
      add({ resource: name, path: storagePath(name) });
    }
  }
  return out;
}

export function hasWildcard(names: string[]): boolean {
  return names.some((n) => n.includes('*'));
}
