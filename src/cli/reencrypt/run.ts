/**
 * `reencrypt` from start to summary: resolve the resources, pick the method, pass the key-id gate
 * and the write window, rewrite every resource, and sum up. No output of its own: lines go to
 * `log`, progress to `events`; the command (../reencrypt.ts) prints.
 */
import { ConfigError } from '../../errors.js';
import { Checkpoint, emptyCounts, type Counts, type FailureGroup } from './checkpoint.js';
import {
  SVM_GROUP,
  SVM_VERSIONS,
  rewriteBySvm,
  rewriteByUpdate,
  type EngineOptions,
  type ProgressEvent,
  type ResourceOutcome,
} from './engine.js';
import { formatDuration, waitForKeyId, waitWriteWindow, type Replica } from './gate.js';
import type { KubeTransport } from './kube.js';
import { RateLimiter, realClock, type Clock } from './ratelimit.js';
import { Discovery, type ResourceTarget } from './resources.js';

export type Method = 'auto' | 'svm' | 'update';

export interface ReencryptOptions {
  kube: KubeTransport;
  /** Resource names (--resource or the EncryptionConfiguration's). */
  names: string[];
  /** Names the cluster does not serve are an error (--resource) rather than skipped. */
  strict: boolean;
  method: Method;
  checkpointFile?: string;
  gate?: { keyId: string; replicas: Replica[]; intervalMs: number; timeoutMs: number };
  writeWindowMs: number;
  qps: number;
  burst?: number;
  concurrency: number;
  pageSize: number;
  maxRetries: number;
  svmPollMs?: number;
  svmStartTimeoutMs?: number;
  stop: AbortSignal;
  clock?: Clock;
  wallNow?: () => number;
  log(line: string): void;
  events(e: ProgressEvent): void;
}

export interface ResourceSummary {
  resource: string;
  outcome: ResourceOutcome | 'already-done';
  counts: Counts;
  failures: Record<string, FailureGroup>;
  storageVersionMigration?: string;
}

export interface ReencryptSummary {
  server: string;
  method: 'svm' | 'update';
  /** storagemigration.k8s.io version used (svm method). */
  svmVersion?: string;
  resources: ResourceSummary[];
  /** Listed in the EncryptionConfiguration but not served by the cluster. */
  notServed: string[];
  totals: Counts;
  /** Stopped by the user (Ctrl-C) before the end. */
  stopped: boolean;
  /** Why the gate refused to start (nothing written). */
  gateFailed?: string;
  elapsedMs: number;
  checkpoint?: string;
}

export async function runReencrypt(o: ReencryptOptions): Promise<ReencryptSummary> {
  const clock = o.clock ?? realClock;
  const wall = o.wallNow ?? Date.now;
  const started = clock.now();
  const discovery = new Discovery(o.kube);
  const { targets, missing } = await discovery.resolve(o.names, o.strict);
  for (const m of missing) o.log(`skipping ${m}: the cluster does not serve it`);
  if (targets.length === 0)
    throw new ConfigError('--resource', `none of ${o.names.join(', ')} is served by the cluster`);

  const svmVersions = await discovery.groupVersions(SVM_GROUP);
  const svmVersion = SVM_VERSIONS.find((v) => svmVersions.includes(v));
  let method: 'svm' | 'update';
  if (o.method === 'svm') {
    if (!svmVersion) {
      throw new ConfigError(
        '--method',
        `the cluster does not serve ${SVM_GROUP} (${SVM_VERSIONS.join(', ')}); use --method update (or auto)`,
      );
    }
    method = 'svm';
  } else if (o.method === 'update') method = 'update';
  else method = svmVersion ? 'svm' : 'update';
  o.log(
    method === 'svm'
      ? `method: StorageVersionMigration (${SVM_GROUP}/${svmVersion}) for ${targets.map((t) => t.id).join(', ')}`
      : `method: no-op updates with resourceVersion for ${targets.map((t) => t.id).join(', ')}`,
  );

  const checkpoint = Checkpoint.open(o.checkpointFile, o.kube.server, method);
  if (checkpoint.resumed) o.log(`resuming from ${o.checkpointFile}`);
  const summary = (stopped: boolean, gateFailed?: string): ReencryptSummary =>
    summarize(
      o.kube.server,
      method,
      method === 'svm' ? svmVersion : undefined,
      targets,
      missing,
      checkpoint,
      outcomes,
      {
        stopped,
        gateFailed,
        elapsedMs: clock.now() - started,
        checkpoint: o.checkpointFile,
      },
    );
  const outcomes = new Map<string, ResourceOutcome | 'already-done'>();
  for (const t of targets) if (checkpoint.data.resources[t.id]?.done) outcomes.set(t.id, 'already-done');
  if (outcomes.size === targets.length) {
    o.log(`every resource is already done according to ${o.checkpointFile}; remove it to start over`);
    return summary(false);
  }

  // The gate: every replica on the new key_id, then the write window.
  if (o.gate) {
    const g = checkpoint.data.gate;
    if (g && g.keyId === o.gate.keyId && g.windowEndedAt <= wall()) {
      o.log(`key_id ${g.keyId}: gate and write window passed earlier (checkpoint); not waiting again`);
    } else {
      const r = await waitForKeyId({ ...o.gate, clock, signal: o.stop, log: o.log, wallNow: wall });
      for (const rep of o.gate.replicas) rep.close?.();
      if (!r.ok) return summary(o.stop.aborted, o.stop.aborted ? undefined : r.reason);
      const passed = await waitWriteWindow({
        adoptedAt: r.adoptedAt,
        windowMs: o.writeWindowMs,
        clock,
        signal: o.stop,
        log: o.log,
        wallNow: wall,
      });
      if (!passed) return summary(true);
      checkpoint.data.gate = { keyId: o.gate.keyId, windowEndedAt: r.adoptedAt + o.writeWindowMs };
      checkpoint.save();
    }
  } else {
    o.log(
      'no --wait-for-key-id: not checking that the plugin replicas switched keys, and not waiting for the write window',
    );
  }

  const engine: EngineOptions = {
    kube: o.kube,
    limiter: new RateLimiter(o.qps, o.burst, clock),
    clock,
    checkpoint,
    stop: o.stop,
    concurrency: o.concurrency,
    pageSize: o.pageSize,
    maxRetries: o.maxRetries,
    svmPollMs: o.svmPollMs,
    svmStartTimeoutMs: o.svmStartTimeoutMs,
    events: o.events,
    log: o.log,
  };
  const todo = targets.filter((t) => !outcomes.has(t.id));
  if (method === 'update') {
    for (const t of todo) {
      if (o.stop.aborted) break;
      outcomes.set(t.id, await rewriteByUpdate(engine, t));
    }
  } else {
    // Migrations run server-side; follow up to `concurrency` at once.
    const queue = [...todo];
    const workers = Array.from({ length: Math.max(1, Math.min(o.concurrency, queue.length)) }, async () => {
      for (let t = queue.shift(); t && !o.stop.aborted; t = queue.shift()) {
        outcomes.set(t.id, await rewriteBySvm(engine, t, svmVersion!));
      }
    });
    await Promise.all(workers);
  }
  checkpoint.save();
  const stopped = targets.some((t) => {
    const oc = outcomes.get(t.id);
    return oc === undefined || oc === 'stopped';
  });
  return summary(stopped);
}

function summarize(
  server: string,
  method: 'svm' | 'update',
  svmVersion: string | undefined,
  targets: ResourceTarget[],
  notServed: string[],
  checkpoint: Checkpoint,
  outcomes: Map<string, ResourceOutcome | 'already-done'>,
  extra: { stopped: boolean; gateFailed?: string; elapsedMs: number; checkpoint?: string },
): ReencryptSummary {
  const totals = emptyCounts();
  const resources: ResourceSummary[] = targets.map((t) => {
    const cp = checkpoint.resource(t.id);
    for (const k of Object.keys(totals) as Array<keyof Counts>) totals[k] += cp.counts[k];
    return {
      resource: t.id,
      outcome: outcomes.get(t.id) ?? 'stopped',
      counts: { ...cp.counts },
      failures: cp.failures,
      ...(cp.svm ? { storageVersionMigration: cp.svm.name } : {}),
    };
  });
  return { server, method, ...(svmVersion ? { svmVersion } : {}), resources, notServed, totals, ...extra };
}

/** The human summary: one line per resource, failure reasons, and what to do next. */
export function formatSummary(s: ReencryptSummary): string {
  const lines: string[] = [];
  if (s.gateFailed) {
    lines.push(`reencrypt: NOT STARTED, nothing was written: ${s.gateFailed}`);
    return `${lines.join('\n')}\n`;
  }
  const w = Math.max(8, ...s.resources.map((r) => r.resource.length));
  lines.push(
    `${'RESOURCE'.padEnd(w)}  ${'OUTCOME'.padEnd(12)} ${'REWRITTEN'.padStart(9)} ${'CONFLICTS'.padStart(9)} ${'GONE'.padStart(6)} ${'FAILED'.padStart(6)}`,
  );
  for (const r of s.resources) {
    const c = r.counts;
    const outcome = r.storageVersionMigration && r.outcome === 'done' ? 'migrated' : r.outcome;
    lines.push(
      `${r.resource.padEnd(w)}  ${outcome.padEnd(12)} ${String(c.rewritten).padStart(9)} ${String(c.conflicts).padStart(9)} ${String(c.gone).padStart(6)} ${String(c.failed).padStart(6)}` +
        (r.storageVersionMigration ? `  (StorageVersionMigration ${r.storageVersionMigration})` : ''),
    );
  }
  const t = s.totals;
  lines.push(
    `total: ${t.rewritten} rewritten, ${t.conflicts} conflicts (rewritten by someone else since the list), ` +
      `${t.gone} gone (deleted since the list), ${t.failed} failed; ${formatDuration(s.elapsedMs)}`,
  );
  for (const r of s.resources) {
    for (const [reason, g] of Object.entries(r.failures)) {
      lines.push(
        `failed ${r.resource}: ${g.count} × ${reason}: ${g.message} (e.g. ${g.examples.join(', ')})`,
      );
    }
  }
  if (s.notServed.length > 0) lines.push(`not served by the cluster (skipped): ${s.notServed.join(', ')}`);
  if (s.stopped) {
    lines.push(
      s.checkpoint
        ? `stopped before the end; rerun the same command (same --checkpoint ${s.checkpoint}) to resume`
        : 'stopped before the end; without --checkpoint a rerun starts over (objects already rewritten are rewritten again)',
    );
  }
  return `${lines.join('\n')}\n`;
}
