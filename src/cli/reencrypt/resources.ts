/**
 * Which resources `reencrypt` rewrites: the names an EncryptionConfiguration lists (or --resource;
 * both parsed by ../census/resources.ts), resolved against API discovery to group, preferred version, kind and scope. Wildcards follow
 * the EncryptionConfiguration rules: `*.` is every core-group resource, `*.apps` every resource of
 * group apps, `*.*` every resource of every group. A wildcard takes the resources that can be
 * listed and updated; subresources are never taken.
 */
import { ConfigError } from '../../errors.js';
import type { KubeTransport } from './kube.js';

export interface ResourceTarget {
  /** Canonical name: "secrets" (core group) or "deployments.apps". */
  id: string;
  group: string;
  version: string;
  resource: string;
  kind: string;
  namespaced: boolean;
  verbs: string[];
}

interface ApiResource {
  name: string;
  namespaced: boolean;
  kind: string;
  verbs?: string[];
}

interface GroupInfo {
  group: string;
  version: string;
}

export class Discovery {
  private groups: GroupInfo[] | undefined;
  private readonly lists = new Map<string, ApiResource[]>();

  constructor(private readonly kube: KubeTransport) {}

  /** Every served group with its preferred version; the core group is "". */
  async allGroups(): Promise<GroupInfo[]> {
    if (this.groups) return this.groups;
    const core = await this.kube.request<{ versions?: string[] }>({ method: 'GET', path: '/api' });
    const apis = await this.kube.request<{
      groups?: Array<{
        name: string;
        preferredVersion?: { version: string };
        versions?: Array<{ version: string }>;
      }>;
    }>({ method: 'GET', path: '/apis' });
    const out: GroupInfo[] = [{ group: '', version: core.versions?.[0] ?? 'v1' }];
    for (const g of apis.groups ?? []) {
      const version = g.preferredVersion?.version ?? g.versions?.[0]?.version;
      if (version) out.push({ group: g.name, version });
    }
    this.groups = out;
    return out;
  }

  /** All versions a group serves (for storagemigration.k8s.io), or [] if not served. */
  async groupVersions(group: string): Promise<string[]> {
    const apis = await this.kube.request<{
      groups?: Array<{ name: string; versions?: Array<{ version: string }> }>;
    }>({ method: 'GET', path: '/apis' });
    const g = (apis.groups ?? []).find((x) => x.name === group);
    return (g?.versions ?? []).map((v) => v.version);
  }

  async resources(group: string, version: string): Promise<ApiResource[]> {
    const path = group === '' ? `/api/${version}` : `/apis/${group}/${version}`;
    const cached = this.lists.get(path);
    if (cached) return cached;
    const list = await this.kube.request<{ resources?: ApiResource[] }>({ method: 'GET', path });
    const rs = list.resources ?? [];
    this.lists.set(path, rs);
    return rs;
  }

  /**
   * Resolves names to targets. `strict`: a name the cluster does not serve is an error (--resource);
   * otherwise it is returned in `missing` (an EncryptionConfiguration may list a CRD not installed).
   */
  async resolve(names: string[], strict: boolean): Promise<{ targets: ResourceTarget[]; missing: string[] }> {
    const groups = await this.allGroups();
    const targets: ResourceTarget[] = [];
    const missing: string[] = [];
    const add = (t: ResourceTarget): void => {
      if (!targets.some((x) => x.id === t.id)) targets.push(t);
    };
    for (const raw of names) {
      let name = raw.trim().toLowerCase().replace(/\.$/, '');
      if (name === '*') name = '*.';
      const dot = name.indexOf('.');
      const resource = dot < 0 ? name : name.slice(0, dot);
      const group = dot < 0 ? '' : name.slice(dot + 1);
      if (resource === '*') {
        const chosen = group === '*' ? groups : groups.filter((g) => g.group === group);
        for (const g of chosen) {
          for (const r of await this.resources(g.group, g.version)) {
            if (r.name.includes('/')) continue;
            const verbs = r.verbs ?? [];
            if (!verbs.includes('list') || !verbs.includes('update')) continue;
            add(target(g, r));
          }
        }
        continue;
      }
      const g = groups.find((x) => x.group === group);
      const r = g ? (await this.resources(g.group, g.version)).find((x) => x.name === resource) : undefined;
      if (!g || !r) {
        if (strict) {
          throw new ConfigError(
            '--resource',
            `the cluster does not serve ${JSON.stringify(raw)} (write core resources as "secrets", others as "deployments.apps")`,
          );
        }
        missing.push(raw);
        continue;
      }
      add(target(g, r));
    }
    return { targets, missing };
  }
}

function target(g: GroupInfo, r: ApiResource): ResourceTarget {
  return {
    id: g.group === '' ? r.name : `${r.name}.${g.group}`,
    group: g.group,
    version: g.version,
    resource: r.name,
    kind: r.kind,
    namespaced: r.namespaced,
    verbs: r.verbs ?? [],
  };
}

/** The list path of a resource across all namespaces. */
export function listPath(t: ResourceTarget): string {
  const base = t.group === '' ? `/api/${t.version}` : `/apis/${t.group}/${t.version}`;
  return `${base}/${t.resource}`;
}

/** The path of one object. */
export function objectPath(t: ResourceTarget, namespace: string | undefined, name: string): string {
  const base = t.group === '' ? `/api/${t.version}` : `/apis/${t.group}/${t.version}`;
  const ns = t.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  return `${base}${ns}/${t.resource}/${encodeURIComponent(name)}`;
}

export function apiVersionOf(t: ResourceTarget): string {
  return t.group === '' ? t.version : `${t.group}/${t.version}`;
}
