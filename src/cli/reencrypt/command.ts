/**
 * The `reencrypt` command body (flags → runReencrypt → output → exit code), loaded only when the
 * command runs so the other commands (serve above all) never load the Kubernetes client.
 */
import { ConfigError } from '../../errors.js';
import { parseDuration } from '../../config/fields.js';
import { createProgress, type Progress } from '../progress.js';
import { etcdOptionsFrom, hasEtcdFlags } from '../etcd/connect.js';
import { countWhere, notUnderKeyId, runCensus, underVersion } from '../census/census.js';
import { parseResourceList, resourcesFromEncryptionConfig } from '../census/resources.js';
import { KubeClient, loadKubeConfig } from './kube.js';
import { MetricsReplica, SocketReplica, type Replica } from './gate.js';
import { formatSummary, runReencrypt, type Method } from './run.js';
import type { ProgressEvent } from './engine.js';

export interface Flags {
  kubeconfig?: string;
  context?: string;
  encryptionConfig?: string;
  resource?: string;
  method: string;
  waitForKeyId?: string;
  pluginMetrics?: string;
  socket?: string;
  gateTimeout: string;
  gateInterval: string;
  writeWindow: string;
  qps: string;
  burst?: string;
  concurrency: string;
  pageSize: string;
  retries: string;
  checkpoint?: string;
  progressEvery: string;
  svmTimeout: string;
  json?: boolean;
  verify?: boolean;
  oldVersion?: string;
  [k: string]: unknown;
}

function intFlag(flag: string, v: string | undefined, min: number): number {
  const n = Number(v);
  if (v === undefined || !Number.isInteger(n) || n < min)
    throw new ConfigError(flag, `expected an integer ≥ ${min}; got ${JSON.stringify(v)}`);
  return n;
}

function numFlag(flag: string, v: string, min: number): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min)
    throw new ConfigError(flag, `expected a number ≥ ${min}; got ${JSON.stringify(v)}`);
  return n;
}

function durFlag(flag: string, v: string): number {
  const ms = parseDuration(v);
  if (ms === undefined)
    throw new ConfigError(flag, `expected a duration like 3m or 30s; got ${JSON.stringify(v)}`);
  return ms;
}

function list(v: string | undefined): string[] {
  return (v ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

export async function reencryptCommand(opts: Flags): Promise<number> {
  const err = process.stderr;
  const log = (line: string): void => {
    err.write(`${line}\n`);
  };

  if (!opts.resource && !opts.encryptionConfig)
    throw new ConfigError(
      '--resource',
      'name the resources: --encryption-config FILE or --resource secrets,configmaps',
    );
  const names = [
    ...(opts.resource ? parseResourceList('--resource', opts.resource) : []),
    ...(opts.encryptionConfig ? resourcesFromEncryptionConfig(opts.encryptionConfig) : []),
  ].filter((n, i, a) => a.indexOf(n) === i);
  const method = opts.method as Method;
  if (!['auto', 'svm', 'update'].includes(method))
    throw new ConfigError('--method', 'expected auto, svm or update');

  const replicas: Replica[] = [
    ...list(opts.pluginMetrics).map((u) => new MetricsReplica(u)),
    ...list(opts.socket).map((s) => new SocketReplica(s)),
  ];
  if (opts.waitForKeyId && replicas.length === 0)
    throw new ConfigError(
      '--wait-for-key-id',
      'name the plugin replicas: --plugin-metrics URL,… and/or --socket ENDPOINT,…',
    );
  if (!opts.waitForKeyId && replicas.length > 0)
    throw new ConfigError('--plugin-metrics', 'replicas are only polled with --wait-for-key-id ID');
  const etcd = opts.verify ? etcdOptionsFrom(opts) : undefined;
  if (!opts.verify && hasEtcdFlags(opts))
    throw new ConfigError('--etcd-endpoints', 'the etcd flags are only used with --verify');
  if (opts.verify && !opts.waitForKeyId && !opts.oldVersion)
    throw new ConfigError(
      '--verify',
      'say what to look for: --wait-for-key-id ID (objects not under ID) and/or --old-version V',
    );

  const qps = numFlag('--qps', opts.qps, 0);
  const settings = {
    names,
    strict: opts.encryptionConfig === undefined,
    method,
    checkpointFile: opts.checkpoint,
    gate: opts.waitForKeyId
      ? {
          keyId: opts.waitForKeyId,
          replicas,
          intervalMs: durFlag('--gate-interval', opts.gateInterval),
          timeoutMs: durFlag('--gate-timeout', opts.gateTimeout),
        }
      : undefined,
    writeWindowMs: durFlag('--write-window', opts.writeWindow),
    qps,
    burst: opts.burst === undefined ? undefined : intFlag('--burst', opts.burst, 1),
    concurrency: intFlag('--concurrency', opts.concurrency, 1),
    pageSize: intFlag('--page-size', opts.pageSize, 1),
    maxRetries: intFlag('--retries', opts.retries, 0),
    svmStartTimeoutMs: durFlag('--svm-timeout', opts.svmTimeout),
  };
  const everyN = intFlag('--progress-every', opts.progressEvery, 1);
  const kube = new KubeClient(loadKubeConfig(opts.kubeconfig, opts.context));

  // Ctrl-C / SIGTERM: stop after the in-flight updates; a second one exits at once.
  const stop = new AbortController();
  const onSignal = (sig: NodeJS.Signals): void => {
    if (stop.signal.aborted) {
      log(`${sig} again: exiting now (the checkpoint may be up to a second behind)`);
      process.exit(130);
    }
    log(`${sig}: stopping after the in-flight requests (again to exit at once)`);
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const bars = new Map<string, { p: Progress; done: number }>();
  const events = (e: ProgressEvent): void => {
    if (e.type === 'start') {
      const remaining = e.total === undefined ? undefined : Math.max(0, e.total - e.done);
      bars.set(e.resource, {
        p: createProgress({ label: e.resource, total: remaining, stream: err, everyN }),
        done: e.done,
      });
      if (e.done > 0) log(`${e.resource}: ${e.done} objects done before (checkpoint)`);
    } else if (e.type === 'progress') {
      const b = bars.get(e.resource);
      if (!b) return;
      const { rewritten, conflicts, gone, failed } = e.counts;
      b.p.tick(e.done - b.done, { resource: e.resource, rewritten, conflicts, gone, failed });
      b.done = e.done;
    } else if (e.type === 'svm') {
      log(`${e.resource}: StorageVersionMigration ${e.name} ${e.state}`);
    } else if (e.type === 'end') {
      bars.get(e.resource)?.p.done({ resource: e.resource, outcome: e.outcome, ...e.counts });
    }
  };

  let summary;
  try {
    summary = await runReencrypt({ ...settings, kube, stop: stop.signal, log, events });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const r of replicas) r.close?.();
    kube.close();
  }

  let verify: { total: number; byResource: Record<string, number>; looking: string } | undefined;
  if (etcd && !summary.stopped && !summary.gateFailed) {
    const progress = createProgress({ label: 'verify (census)', stream: err, everyN });
    const report = await runCensus({
      etcd,
      resources: names,
      onTotal: (n) => progress.setTotal(n),
      onProgress: (n, resource) => progress.tick(n, { resource }),
    });
    progress.done({ total: report.total });
    const pick = (g: Parameters<ReturnType<typeof notUnderKeyId>>[0]): boolean =>
      (opts.waitForKeyId ? notUnderKeyId(opts.waitForKeyId)(g) : false) ||
      (opts.oldVersion ? underVersion(opts.oldVersion)(g) : false);
    const looking = [
      opts.waitForKeyId ? `not under key_id ${opts.waitForKeyId}` : '',
      opts.oldVersion ? `under ${opts.oldVersion}` : '',
    ]
      .filter((s) => s)
      .join(' or ');
    verify = { ...countWhere(report, pick), looking };
  }

  if (opts.json) process.stdout.write(`${JSON.stringify({ ...summary, ...(verify ? { verify } : {}) })}\n`);
  else {
    process.stdout.write(formatSummary(summary));
    if (verify) {
      const per = Object.entries(verify.byResource)
        .map(([r, n]) => `${r} ${n}`)
        .join(', ');
      process.stdout.write(
        verify.total === 0
          ? `verify: no object is ${verify.looking} (census over etcd)\n`
          : `verify: ${verify.total} objects are still ${verify.looking}: ${per}\n`,
      );
    }
  }
  if (summary.stopped) return 130;
  if (summary.gateFailed || summary.totals.failed > 0) return 1;
  if (verify && verify.total > 0) return 3;
  return 0;
}
