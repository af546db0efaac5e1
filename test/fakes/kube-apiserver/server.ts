/**
 * A wire-level fake of the kube-apiserver subset `reencrypt` uses, over HTTPS with a bearer
 * token, for @kubernetes/client-node to talk to:
 *
 * - discovery: /api, /apis, /api/v1, /apis/G/V (APIResourceList with verbs);
 * - list (all namespaces) with limit / continue / remainingItemCount, and 410 Expired for a
 *   continue token marked expired (optionally offering a fresh one, as the real server does);
 * - get and update (PUT) with resourceVersion preconditions: 409 Conflict on a stale one, 404 for
 *   a deleted object; every successful update counted per object (`writes`);
 * - injected faults: 429 with Retry-After, latency on updates, a hook run before each update
 *   (to modify or delete the object meanwhile);
 * - storagemigration.k8s.io (v1alpha1 / v1beta1) StorageVersionMigrations: create (generateName),
 *   get; a built-in "controller" sets Running, rewrites every object of the resource (counted in
 *   `writes`), then Succeeded (Running → False) or Failed, like kube-controller-manager's.
 *
 * Every request is logged with its arrival time (performance.now()) for rate checks.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpsFake } from '../azure-keyvault/https-fake.js';
import { makeTestPki } from '../azure-keyvault/certs.js';

export interface FakeResource {
  group: string;
  version: string;
  resource: string;
  kind: string;
  namespaced: boolean;
  verbs?: string[];
}

export interface FakeObject {
  metadata: { name: string; namespace?: string; resourceVersion: string; uid: string; [k: string]: unknown };
  [k: string]: unknown;
}

export interface LoggedRequest {
  at: number;
  method: string;
  path: string;
  query: URLSearchParams;
}

export interface FakeOptions {
  token?: string;
  resources?: FakeResource[];
  /** Serve storagemigration.k8s.io in these versions (none: not served). */
  svmVersions?: string[];
  /** svm controller: delay before each step (ms). */
  svmStepMs?: number;
  /** svm controller: resources (id) whose migration fails, with the message. */
  svmFail?: Record<string, string>;
  /** svm: no controller acts (migrations stay without conditions). */
  svmNoController?: boolean;
}

export type Fault = { status: number; headers?: Record<string, string>; body?: unknown } | undefined;

const CORE_DEFAULT: FakeResource[] = [
  { group: '', version: 'v1', resource: 'secrets', kind: 'Secret', namespaced: true },
  { group: '', version: 'v1', resource: 'configmaps', kind: 'ConfigMap', namespaced: true },
  { group: '', version: 'v1', resource: 'namespaces', kind: 'Namespace', namespaced: false },
  { group: 'apps', version: 'v1', resource: 'deployments', kind: 'Deployment', namespaced: true },
  { group: 'apps', version: 'v1', resource: 'statefulsets', kind: 'StatefulSet', namespaced: true },
];

const ALL_VERBS = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'];

export function idOf(r: { group: string; resource: string }): string {
  return r.group === '' ? r.resource : `${r.resource}.${r.group}`;
}

export class FakeKubeApiserver extends HttpsFake {
  readonly token: string;
  readonly ca: string;
  readonly resources: FakeResource[];
  /** id → key (ns/name) → object. */
  readonly store = new Map<string, Map<string, FakeObject>>();
  /** "id ns/name" → successful updates (or SVM rewrites). */
  readonly writes = new Map<string, number>();
  readonly requests: LoggedRequest[] = [];
  readonly migrations = new Map<string, { version: string; body: Record<string, unknown> }>();
  /** Runs before each request; a returned fault is answered instead. */
  fault: (req: LoggedRequest) => Fault = () => undefined;
  /** Runs before an update is applied (may change or delete the object). */
  beforeUpdate: (id: string, key: string) => void = () => undefined;
  /** Delay before answering an update (ms). */
  updateLatencyMs = 0;
  /** Continue tokens answered with 410 Expired; `offer` says whether to offer a fresh one. */
  expireContinue: { offer: boolean } | undefined;
  inflightUpdates = 0;
  maxInflightUpdates = 0;
  private rv = 1000;
  private seq = 0;
  private readonly opts: FakeOptions;

  constructor(opts: FakeOptions = {}) {
    const pki = makeTestPki();
    super(pki, (req, res) => void this.handle(req, res), true);
    this.ca = pki.ca;
    this.opts = opts;
    this.token = opts.token ?? 'fake-token-' + Math.random().toString(36).slice(2);
    this.resources = opts.resources ?? CORE_DEFAULT;
    for (const r of this.resources) this.store.set(idOf(r), new Map());
  }

  /** A kubeconfig for this server (CA pinned, bearer token). */
  kubeconfig(): string {
    return [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: fake',
      '  cluster:',
      `    server: ${this.url}`,
      `    certificate-authority-data: ${Buffer.from(this.ca).toString('base64')}`,
      'users:',
      '- name: fake',
      '  user:',
      `    token: ${this.token}`,
      'contexts:',
      '- name: fake',
      '  context: {cluster: fake, user: fake}',
      'current-context: fake',
      '',
    ].join('\n');
  }

  nextRv(): string {
    return String(++this.rv);
  }

  /** Adds `n` objects named prefix-000… in the namespaces given (round robin). */
  seed(id: string, n: number, namespaces: string[] = ['default'], prefix = 'obj'): void {
    const r = this.resourceById(id);
    const m = this.store.get(id)!;
    for (let i = 0; i < n; i++) {
      const name = `${prefix}-${String(i).padStart(5, '0')}`;
      const namespace = r.namespaced ? namespaces[i % namespaces.length] : undefined;
      const obj: FakeObject = {
        metadata: {
          name,
          ...(namespace ? { namespace } : {}),
          resourceVersion: this.nextRv(),
          uid: `uid-${id}-${i}`,
          creationTimestamp: '2026-01-01T00:00:00Z',
        },
        ...(r.kind === 'Secret'
          ? { type: 'Opaque', data: { v: Buffer.from(`secret-${i}`).toString('base64') } }
          : {}),
        ...(r.kind === 'ConfigMap' ? { data: { v: `value-${i}` } } : {}),
        futureField: { keep: true },
      };
      m.set(key(namespace, name), obj);
    }
  }

  resourceById(id: string): FakeResource {
    const r = this.resources.find((x) => idOf(x) === id);
    if (!r) throw new Error(`no resource ${id}`);
    return r;
  }

  writesOf(id: string): number[] {
    return [...this.store.get(id)!.keys()].map((k) => this.writes.get(`${id} ${k}`) ?? 0);
  }

  updates(): LoggedRequest[] {
    return this.requests.filter((r) => r.method === 'PUT');
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://fake');
    const logged: LoggedRequest = {
      at: performance.now(),
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
    };
    this.requests.push(logged);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const send = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      return send(401, status(401, 'Unauthorized', 'Unauthorized'));
    }
    const f = this.fault(logged);
    if (f) return send(f.status, f.body ?? status(f.status, 'TooManyRequests', 'injected'), f.headers);
    try {
      const body = chunks.length
        ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>)
        : undefined;
      const [code, out] = await this.route(logged, body);
      send(code, out);
    } catch (err) {
      send(500, status(500, 'InternalError', (err as Error).message));
    }
  }

  private async route(
    r: LoggedRequest,
    body: Record<string, unknown> | undefined,
  ): Promise<[number, unknown]> {
    const p = r.path
      .split('/')
      .filter((s) => s !== '')
      .map(decodeURIComponent);
    if (r.method === 'GET' && r.path === '/api') return [200, { kind: 'APIVersions', versions: ['v1'] }];
    if (r.method === 'GET' && r.path === '/apis') return [200, this.groupList()];
    // /api/v1/... or /apis/G/V/...
    let group: string;
    let version: string;
    let rest: string[];
    if (p[0] === 'api') [group, version, rest] = ['', p[1], p.slice(2)];
    else if (p[0] === 'apis' && p.length >= 3) [group, version, rest] = [p[1], p[2], p.slice(3)];
    else return [404, status(404, 'NotFound', 'the server could not find the requested resource')];
    if (rest.length === 0 && r.method === 'GET') return this.resourceList(group, version);
    if (group === 'storagemigration.k8s.io') return this.svmRoute(r, version, rest, body);
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const res = this.resources.find(
      (x) => x.group === group && x.version === version && x.resource === rest[0],
    );
    if (!res) return [404, status(404, 'NotFound', 'the server could not find the requested resource')];
    const id = idOf(res);
    if (rest.length === 1 && r.method === 'GET') return this.list(id, res, namespace, r.query);
    if (rest.length !== 2) return [405, status(405, 'MethodNotAllowed', 'not supported')];
    const k = key(namespace, rest[1]);
    const objects = this.store.get(id)!;
    if (r.method === 'GET') {
      const o = objects.get(k);
      return o ? [200, { apiVersion: apiVersion(res), kind: res.kind, ...o }] : [404, notFound(res, rest[1])];
    }
    if (r.method === 'PUT') {
      this.inflightUpdates++;
      this.maxInflightUpdates = Math.max(this.maxInflightUpdates, this.inflightUpdates);
      try {
        if (this.updateLatencyMs > 0) await new Promise((res2) => setTimeout(res2, this.updateLatencyMs));
        this.beforeUpdate(id, k);
        const cur = objects.get(k);
        if (!cur) return [404, notFound(res, rest[1])];
        const meta = (body?.metadata ?? {}) as Record<string, unknown>;
        if (body?.apiVersion !== apiVersion(res) || body?.kind !== res.kind)
          return [400, status(400, 'BadRequest', `expected apiVersion ${apiVersion(res)} kind ${res.kind}`)];
        if (meta.name !== rest[1] || (res.namespaced && meta.namespace !== namespace))
          return [400, status(400, 'BadRequest', 'name/namespace mismatch')];
        if (meta.resourceVersion !== cur.metadata.resourceVersion) {
          return [
            409,
            status(
              409,
              'Conflict',
              `Operation cannot be fulfilled on ${res.resource} "${rest[1]}": the object has been modified`,
            ),
          ];
        }
        const { apiVersion: _a, kind: _k, ...rest2 } = body;
        const next = { ...rest2, metadata: { ...meta, resourceVersion: this.nextRv() } } as FakeObject;
        objects.set(k, next);
        this.writes.set(`${id} ${k}`, (this.writes.get(`${id} ${k}`) ?? 0) + 1);
        return [200, { apiVersion: apiVersion(res), kind: res.kind, ...next }];
      } finally {
        this.inflightUpdates--;
      }
    }
    return [405, status(405, 'MethodNotAllowed', 'not supported')];
  }

  private groupList(): unknown {
    const groups = new Map<string, string[]>();
    for (const r of this.resources)
      if (r.group !== '') groups.set(r.group, [...new Set([...(groups.get(r.group) ?? []), r.version])]);
    if (this.opts.svmVersions?.length) groups.set('storagemigration.k8s.io', this.opts.svmVersions);
    return {
      kind: 'APIGroupList',
      apiVersion: 'v1',
      groups: [...groups].map(([name, versions]) => ({
        name,
        versions: versions.map((v) => ({ groupVersion: `${name}/${v}`, version: v })),
        preferredVersion: { groupVersion: `${name}/${versions[0]}`, version: versions[0] },
      })),
    };
  }

  private resourceList(group: string, version: string): [number, unknown] {
    const gv = group === '' ? version : `${group}/${version}`;
    let resources = this.resources
      .filter((r) => r.group === group && r.version === version)
      .flatMap((r) => [
        {
          name: r.resource,
          singularName: '',
          namespaced: r.namespaced,
          kind: r.kind,
          verbs: r.verbs ?? ALL_VERBS,
        },
        {
          name: `${r.resource}/status`,
          singularName: '',
          namespaced: r.namespaced,
          kind: r.kind,
          verbs: ['get', 'update'],
        },
      ]);
    if (group === 'storagemigration.k8s.io' && this.opts.svmVersions?.includes(version)) {
      resources = [
        {
          name: 'storageversionmigrations',
          singularName: '',
          namespaced: false,
          kind: 'StorageVersionMigration',
          verbs: ALL_VERBS,
        },
      ];
    }
    if (resources.length === 0)
      return [404, status(404, 'NotFound', 'the server could not find the requested resource')];
    return [200, { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: gv, resources }];
  }

  private list(
    id: string,
    res: FakeResource,
    namespace: string | undefined,
    q: URLSearchParams,
  ): [number, unknown] {
    const all = [...this.store.get(id)!.entries()]
      .filter(([, o]) => namespace === undefined || o.metadata.namespace === namespace)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const token = q.get('continue');
    let start = 0;
    if (token) {
      let after: string;
      try {
        after = (JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { after: string }).after;
      } catch {
        return [400, status(400, 'BadRequest', 'invalid continue token')];
      }
      if (this.expireContinue) {
        const offer = this.expireContinue.offer;
        this.expireContinue = undefined;
        const st = status(
          410,
          'Expired',
          'The provided continue parameter is too old to display a consistent list result.',
        );
        return [410, offer ? { ...st, metadata: { continue: token } } : st];
      }
      start = all.findIndex(([k]) => k > after);
      if (start < 0) start = all.length;
    }
    const limit = Number(q.get('limit') ?? '0');
    const page = limit > 0 ? all.slice(start, start + limit) : all.slice(start);
    const more = start + page.length < all.length;
    const metadata: Record<string, unknown> = { resourceVersion: String(this.rv) };
    if (more) {
      metadata.continue = Buffer.from(JSON.stringify({ after: page[page.length - 1][0] })).toString(
        'base64url',
      );
      metadata.remainingItemCount = all.length - start - page.length;
    }
    return [
      200,
      { kind: `${res.kind}List`, apiVersion: apiVersion(res), metadata, items: page.map(([, o]) => o) },
    ];
  }

  private svmRoute(
    r: LoggedRequest,
    version: string,
    rest: string[],
    body: Record<string, unknown> | undefined,
  ): [number, unknown] {
    if (!this.opts.svmVersions?.includes(version) || rest[0] !== 'storageversionmigrations')
      return [404, status(404, 'NotFound', 'the server could not find the requested resource')];
    if (r.method === 'POST' && rest.length === 1 && body) {
      const spec = (body.spec ?? {}) as { resource?: Record<string, unknown> };
      const gr = spec.resource ?? {};
      const hasVersion = 'version' in gr;
      if (version === 'v1alpha1' ? !hasVersion : hasVersion)
        return [400, status(400, 'BadRequest', `spec.resource shape wrong for ${version}`)];
      const meta = (body.metadata ?? {}) as { name?: string; generateName?: string };
      const name = meta.name ?? `${meta.generateName ?? 'svm-'}${(++this.seq).toString(36).padStart(5, 'x')}`;
      const svm = {
        ...body,
        metadata: {
          ...meta,
          name,
          resourceVersion: this.nextRv(),
          creationTimestamp: new Date().toISOString(),
        },
        status: {},
      };
      delete (svm.metadata as { generateName?: string }).generateName;
      this.migrations.set(name, { version, body: svm });
      if (!this.opts.svmNoController)
        void this.runMigration(name, String(gr.group ?? ''), String(gr.resource ?? ''));
      return [201, svm];
    }
    if (r.method === 'GET' && rest.length === 2) {
      const m = this.migrations.get(rest[1]);
      return m
        ? [200, m.body]
        : [404, status(404, 'NotFound', `storageversionmigrations "${rest[1]}" not found`)];
    }
    return [405, status(405, 'MethodNotAllowed', 'not supported')];
  }

  /** The migrator: Running, rewrite every object, then Succeeded or Failed. */
  private async runMigration(name: string, group: string, resource: string): Promise<void> {
    const step = (): Promise<void> => new Promise((res) => setTimeout(res, this.opts.svmStepMs ?? 50));
    const m = this.migrations.get(name)!;
    const st = m.body.status as { conditions?: Array<Record<string, string>>; resourceVersion?: string };
    const cond = (type: string, reason: string, message = ''): void => {
      const running = st.conditions?.find((c) => c.type === 'Running');
      if (type !== 'Running' && running) running.status = 'False';
      st.conditions = [
        ...(st.conditions ?? []),
        { type, status: 'True', reason, message, lastTransitionTime: new Date().toISOString() },
      ];
    };
    await step();
    st.resourceVersion = String(this.rv);
    const id = idOf({ group, resource });
    const objects = this.store.get(id);
    if (!objects) {
      cond('Failed', 'StorageVersionMigrationFailed', 'resource not found');
      return;
    }
    cond('Running', 'StorageVersionMigrationInProgress');
    await step();
    if (this.opts.svmFail?.[id]) {
      cond('Failed', 'StorageVersionMigrationFailed', this.opts.svmFail[id]);
      return;
    }
    for (const [k, o] of objects) {
      o.metadata.resourceVersion = this.nextRv();
      this.writes.set(`${id} ${k}`, (this.writes.get(`${id} ${k}`) ?? 0) + 1);
    }
    await step();
    cond('Succeeded', 'StorageVersionMigrationSucceeded');
  }
}

function key(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

function apiVersion(r: FakeResource): string {
  return r.group === '' ? r.version : `${r.group}/${r.version}`;
}

function status(code: number, reason: string, message: string): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

function notFound(r: FakeResource, name: string): Record<string, unknown> {
  return status(404, 'NotFound', `${r.resource} "${name}" not found`);
}
