/**
 * The two ways `reencrypt` rewrites a resource through the Kubernetes API:
 *
 * - update: list in pages (limit/continue) and PUT every object back unchanged, carrying its
 *   resourceVersion. The apiserver re-encrypts stale values on write. 409 Conflict (someone
 *   rewrote it since the list) and 404 (deleted since) are counted and skipped.
 * - svm: create a StorageVersionMigration for the resource and follow its conditions
 *   (Running → Succeeded | Failed) as kube-controller-manager's migrator sets them.
 *
 * Every request goes through the shared rate limiter; 429/503 are retried after the server's
 * Retry-After, other transient failures with backoff. A stop request (Ctrl-C) stops new work,
 * lets in-flight updates finish and leaves the checkpoint at the last contiguous finished object.
 */
import type { Checkpoint, Counts, ResourceCheckpoint } from './checkpoint.js';
import { KubeError, type KubeRequest, type KubeTransport } from './kube.js';
import type { Clock, RateLimiter } from './ratelimit.js';
import { apiVersionOf, listPath, objectPath, type ResourceTarget } from './resources.js';

export type ProgressEvent =
  | { type: 'start'; resource: string; total: number | undefined; done: number }
  | { type: 'progress'; resource: string; done: number; total: number | undefined; counts: Counts }
  | { type: 'svm'; resource: string; name: string; state: string }
  | { type: 'end'; resource: string; counts: Counts; outcome: ResourceOutcome };

export type ResourceOutcome = 'done' | 'stopped' | 'failed';

export interface EngineOptions {
  kube: KubeTransport;
  limiter: RateLimiter;
  clock: Clock;
  checkpoint: Checkpoint;
  /** Aborted when the user asks to stop (SIGINT/SIGTERM). */
  stop: AbortSignal;
  concurrency: number;
  pageSize: number;
  /** Retries of one request on 429/5xx/network errors before it counts as failed. */
  maxRetries: number;
  /** Longest Retry-After honoured (ms). */
  maxRetryAfterMs?: number;
  /** Checkpoint at most this often while objects finish (ms). */
  saveEveryMs?: number;
  /** svm: poll interval, and how long a migration may show no condition before we give up. */
  svmPollMs?: number;
  svmStartTimeoutMs?: number;
  events(e: ProgressEvent): void;
  log(line: string): void;
}

const INTERRUPTED = Symbol('interrupted');
type Interrupted = typeof INTERRUPTED;

/** Sends one request through the rate limiter, retrying throttling and transient failures. */
export async function send<T>(o: EngineOptions, req: KubeRequest): Promise<T | Interrupted> {
  for (let attempt = 0; ; attempt++) {
    if (!(await o.limiter.take(o.stop))) return INTERRUPTED;
    try {
      return await o.kube.request<T>(req);
    } catch (err) {
      if (!(err instanceof KubeError) || !retryable(err) || attempt >= o.maxRetries) throw err;
      const backoff = Math.min(30_000, 250 * 2 ** attempt);
      const delay =
        err.retryAfterMs !== undefined ? Math.min(err.retryAfterMs, o.maxRetryAfterMs ?? 600_000) : backoff;
      await o.clock.sleep(delay, o.stop);
      if (o.stop.aborted) return INTERRUPTED;
    }
  }
}

function retryable(err: KubeError): boolean {
  return err.status === 0 || err.status === 429 || err.status === 500 || err.status >= 502;
}

interface Meta {
  name?: string;
  namespace?: string;
  resourceVersion?: string;
}
interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: Meta;
  [k: string]: unknown;
}
interface KubeList {
  items?: KubeObject[];
  metadata?: { continue?: string; remainingItemCount?: number; resourceVersion?: string };
}

/** Key of an object in list (etcd key) order. */
export function keyOf(o: KubeObject): string {
  const m = o.metadata ?? {};
  return m.namespace ? `${m.namespace}/${m.name ?? ''}` : (m.name ?? '');
}

function processed(c: Counts): number {
  return c.rewritten + c.conflicts + c.gone + c.failed;
}

function recordFailure(r: ResourceCheckpoint, err: unknown, object: string): void {
  const key = err instanceof KubeError ? `HTTP ${err.status || 'error'} ${err.reason}` : 'error';
  const message = err instanceof Error ? err.message : String(err);
  const g = (r.failures[key] ??= { count: 0, message, examples: [] });
  g.count++;
  if (g.examples.length < 5) g.examples.push(object);
  r.counts.failed++;
}

/** Counts the objects of a resource with one list of limit 1 (undefined when the server does not say). */
export async function countObjects(o: EngineOptions, t: ResourceTarget): Promise<number | undefined> {
  try {
    const list = await send<KubeList>(o, { method: 'GET', path: listPath(t), query: { limit: 1 } });
    if (list === INTERRUPTED) return undefined;
    const n = list.items?.length ?? 0;
    if (!list.metadata?.continue) return n;
    return list.metadata.remainingItemCount !== undefined ? n + list.metadata.remainingItemCount : undefined;
  } catch {
    return undefined;
  }
}

/** update method: rewrites every object of `t` with no-op PUTs. */
export async function rewriteByUpdate(o: EngineOptions, t: ResourceTarget): Promise<ResourceOutcome> {
  const cp = o.checkpoint.resource(t.id);
  if (cp.done) return 'done';
  const total = await countObjects(o, t);
  o.events({ type: 'start', resource: t.id, total, done: processed(cp.counts) });
  let lastSave = o.clock.now();
  const maybeSave = (force = false): void => {
    const now = o.clock.now();
    if (force || now - lastSave >= (o.saveEveryMs ?? 1000)) {
      o.checkpoint.save();
      lastSave = now;
    }
  };
  const progress = (): void =>
    o.events({
      type: 'progress',
      resource: t.id,
      done: processed(cp.counts),
      total,
      counts: { ...cp.counts },
    });

  for (;;) {
    if (o.stop.aborted) return end('stopped');
    let list: KubeList | Interrupted;
    try {
      list = await send<KubeList>(o, {
        method: 'GET',
        path: listPath(t),
        query: { limit: o.pageSize, continue: cp.continue },
      });
    } catch (err) {
      if (err instanceof KubeError && err.status === 410 && cp.continue !== undefined) {
        if (err.continueToken) {
          o.log(`${t.id}: the continue token expired; continuing with the token the server offered`);
          cp.continue = err.continueToken;
        } else {
          o.log(
            `${t.id}: the continue token expired; listing again from the start (objects already done are rewritten again)`,
          );
          cp.continue = undefined;
          cp.after = undefined;
        }
        continue;
      }
      o.log(`${t.id}: cannot list: ${(err as Error).message}`);
      recordFailure(cp, err, `(list ${t.id})`);
      maybeSave(true);
      return end('failed');
    }
    if (list === INTERRUPTED) return end('stopped');

    const items = list.items ?? [];
    const after = cp.after;
    const finished = items.map((it) => after !== undefined && keyOf(it) <= after);
    let mark = -1;
    const advance = (): void => {
      while (mark + 1 < items.length && finished[mark + 1]) mark++;
      if (mark >= 0) cp.after = keyOf(items[mark]);
    };
    advance();

    const inflight = new Set<Promise<void>>();
    for (let i = 0; i < items.length; i++) {
      if (finished[i]) continue;
      while (inflight.size >= o.concurrency) await Promise.race(inflight);
      if (o.stop.aborted) break;
      const item = items[i];
      const p = rewriteOne(o, t, item, cp).then((ok) => {
        if (ok) {
          finished[i] = true;
          advance();
          progress();
          maybeSave();
        }
      });
      const tracked = p.finally(() => inflight.delete(tracked));
      inflight.add(tracked);
    }
    await Promise.all(inflight);
    if (finished.some((f) => !f)) {
      maybeSave(true);
      return end('stopped');
    }
    const next = list.metadata?.continue || undefined;
    cp.continue = next;
    cp.after = undefined;
    if (!next) {
      cp.done = true;
      maybeSave(true);
      return end('done');
    }
    maybeSave(true);
  }

  function end(outcome: ResourceOutcome): ResourceOutcome {
    o.events({ type: 'end', resource: t.id, counts: { ...cp.counts }, outcome });
    return outcome;
  }
}

/** Rewrites one object; false if interrupted before it finished. */
async function rewriteOne(
  o: EngineOptions,
  t: ResourceTarget,
  item: KubeObject,
  cp: ResourceCheckpoint,
): Promise<boolean> {
  const name = item.metadata?.name;
  const key = keyOf(item);
  if (!name || !item.metadata?.resourceVersion) {
    recordFailure(cp, new Error('listed without a name or resourceVersion'), key || '(unnamed)');
    return true;
  }
  const body: KubeObject = { ...item, apiVersion: apiVersionOf(t), kind: t.kind };
  try {
    const r = await send(o, { method: 'PUT', path: objectPath(t, item.metadata.namespace, name), body });
    if (r === INTERRUPTED) return false;
    cp.counts.rewritten++;
  } catch (err) {
    if (err instanceof KubeError && err.status === 409) cp.counts.conflicts++;
    else if (err instanceof KubeError && err.status === 404) cp.counts.gone++;
    else recordFailure(cp, err, key);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// StorageVersionMigration

export const SVM_GROUP = 'storagemigration.k8s.io';
/** Versions we can drive, newest first (v1alpha1 names group, version and resource). */
export const SVM_VERSIONS = ['v1', 'v1beta1', 'v1alpha1'];

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}
interface Svm {
  metadata?: { name?: string; creationTimestamp?: string };
  status?: { conditions?: Condition[] };
}

export function svmBody(version: string, t: ResourceTarget): unknown {
  const resource =
    version === 'v1alpha1'
      ? { group: t.group, version: t.version, resource: t.resource }
      : { group: t.group, resource: t.resource };
  return {
    apiVersion: `${SVM_GROUP}/${version}`,
    kind: 'StorageVersionMigration',
    metadata: {
      generateName: `kms-reencrypt-${t.id.replace(/[^a-z0-9-]/g, '-').slice(0, 40)}-`,
      labels: { 'app.kubernetes.io/managed-by': 'k8s-kms-plugin' },
    },
    spec: { resource },
  };
}

/** Running / Succeeded / Failed / Pending (no condition yet), from the conditions the migrator sets. */
export function svmState(svm: Svm): {
  state: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
  message?: string;
} {
  const conds = svm.status?.conditions ?? [];
  const on = (type: string): Condition | undefined =>
    conds.find((c) => c.type === type && c.status === 'True');
  const failed = on('Failed');
  if (failed) return { state: 'Failed', message: failed.message || failed.reason || 'migration failed' };
  if (on('Succeeded')) return { state: 'Succeeded' };
  if (on('Running')) return { state: 'Running' };
  return { state: 'Pending' };
}

/** svm method: creates (or, resuming, follows) a StorageVersionMigration for `t`. */
export async function rewriteBySvm(
  o: EngineOptions,
  t: ResourceTarget,
  version: string,
): Promise<ResourceOutcome> {
  const cp = o.checkpoint.resource(t.id);
  if (cp.done) return 'done';
  const base = `/apis/${SVM_GROUP}/${version}/storageversionmigrations`;
  const end = (outcome: ResourceOutcome): ResourceOutcome => {
    o.events({ type: 'end', resource: t.id, counts: { ...cp.counts }, outcome });
    return outcome;
  };
  const total = await countObjects(o, t);
  o.events({ type: 'start', resource: t.id, total, done: 0 });
  try {
    let svm: Svm | Interrupted | undefined;
    if (cp.svm && cp.svm.version === version) {
      try {
        svm = await send<Svm>(o, { method: 'GET', path: `${base}/${encodeURIComponent(cp.svm.name)}` });
        if (svm !== INTERRUPTED && svmState(svm).state === 'Failed') {
          o.log(
            `${t.id}: StorageVersionMigration ${cp.svm.name} had failed (${svmState(svm).message}); creating a new one`,
          );
          svm = undefined;
        } else if (svm !== INTERRUPTED) {
          o.log(`${t.id}: following StorageVersionMigration ${cp.svm.name} from the checkpoint`);
        }
      } catch (err) {
        if (!(err instanceof KubeError && err.status === 404)) throw err;
        svm = undefined;
      }
    }
    if (svm === INTERRUPTED) return end('stopped');
    if (!svm) {
      svm = await send<Svm>(o, { method: 'POST', path: base, body: svmBody(version, t) });
      if (svm === INTERRUPTED) return end('stopped');
      const name = svm.metadata?.name;
      if (!name) throw new KubeError(0, 'BadResponse', 'the created StorageVersionMigration has no name');
      cp.svm = { name, version };
      o.checkpoint.save();
      o.log(`${t.id}: created StorageVersionMigration ${name}`);
    }
    const name = cp.svm!.name;
    const started = o.clock.now();
    let lastState = '';
    for (;;) {
      const s = svmState(svm);
      if (s.state !== lastState) {
        o.events({ type: 'svm', resource: t.id, name, state: s.state });
        lastState = s.state;
      }
      if (s.state === 'Succeeded') {
        cp.done = true;
        o.checkpoint.save();
        return end('done');
      }
      if (s.state === 'Failed') {
        recordFailure(
          cp,
          new KubeError(0, 'MigrationFailed', s.message ?? 'failed'),
          `storageversionmigration/${name}`,
        );
        cp.svm = undefined;
        o.checkpoint.save();
        return end('failed');
      }
      if (s.state === 'Pending' && o.clock.now() - started > (o.svmStartTimeoutMs ?? 120_000)) {
        recordFailure(
          cp,
          new KubeError(
            0,
            'NoMigrator',
            `StorageVersionMigration ${name} got no condition in ${Math.round((o.svmStartTimeoutMs ?? 120_000) / 1000)}s: ` +
              'is the storage-version-migrator controller running in kube-controller-manager? Rerun with --method update',
          ),
          `storageversionmigration/${name}`,
        );
        o.checkpoint.save();
        return end('failed');
      }
      await o.clock.sleep(o.svmPollMs ?? 2000, o.stop);
      if (o.stop.aborted) return end('stopped');
      const next = await send<Svm>(o, { method: 'GET', path: `${base}/${encodeURIComponent(name)}` });
      if (next === INTERRUPTED) return end('stopped');
      svm = next;
    }
  } catch (err) {
    o.log(`${t.id}: StorageVersionMigration: ${(err as Error).message}`);
    recordFailure(cp, err, `(storageversionmigration for ${t.id})`);
    o.checkpoint.save();
    return end('failed');
  }
}
