/**
 * `reencrypt`: rewrite every object of the configured resources through the Kubernetes API (never
 * by writing etcd) so kube-apiserver stores them under the current key (design §8.3). See
 * docs/reencrypt.md. The work is in ./reencrypt/; this file parses flags, prints and exits:
 * 0 done, 1 some objects failed (or the gate gave up), 2 bad flags, 3 --verify found objects still
 * under the old key, 130 stopped by Ctrl-C/SIGTERM (resumable with --checkpoint).
 */
import type { Command } from 'commander';
import { ConfigError } from '../errors.js';
import { parseDuration } from '../config/fields.js';
import { createProgress, type Progress } from './progress.js';
import { addEtcdFlags, etcdOptionsFrom, hasEtcdFlags } from './etcd/connect.js';
import { countWhere, notUnderKeyId, runCensus, underVersion } from './census/census.js';
import { parseResourceList, resourcesFromEncryptionConfig } from './census/resources.js';
import { KubeClient, loadKubeConfig } from './reencrypt/kube.js';
import { MetricsReplica, SocketReplica, type Replica } from './reencrypt/gate.js';
import { formatSummary, runReencrypt, type Method } from './reencrypt/run.js';
import type { ProgressEvent } from './reencrypt/engine.js';

interface Flags {
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

export function registerReencrypt(program: Command): void {
  const cmd = program
    .command('reencrypt')
    .description(
      'rewrite every object of the configured resources through the Kubernetes API so they are stored under the ' +
        'current key: StorageVersionMigration where served, else no-op updates; gated on every plugin replica ' +
        'reporting the new key_id plus the apiserver write window; rate-limited, resumable, with progress',
    )
    .option('--kubeconfig <FILE>', 'kubeconfig (default: KUBECONFIG, ~/.kube/config, or in-cluster)')
    .option('--context <NAME>', 'kubeconfig context (default: the current one)')
    .option(
      '--encryption-config <FILE>',
      'rewrite every resource this EncryptionConfiguration lists (*.G, *.* expanded)',
    )
    .option('--resource <LIST>', 'resources to rewrite, e.g. secrets,configmaps,deployments.apps')
    .option('--method <M>', 'auto (StorageVersionMigration if served, else update), svm or update', 'auto')
    .option(
      '--wait-for-key-id <ID>',
      'before the first write, wait until every plugin replica reports this key_id',
    )
    .option(
      '--plugin-metrics <URLS>',
      "the replicas' metrics endpoints, comma separated (http://node:8080/metrics)",
    )
    .option('--socket <ENDPOINTS>', "the replicas' KMS sockets, comma separated (Status is called)")
    .option('--gate-timeout <DURATION>', 'give up waiting for the key_id after this long', '30m')
    .option('--gate-interval <DURATION>', 'how often replicas are polled', '5s')
    .option('--write-window <DURATION>', 'after the switch, wait this long before the first write', '3m')
    .option('--qps <N>', 'API requests per second (0: no limit)', '20')
    .option('--burst <N>', 'requests allowed at once above --qps (default: qps)')
    .option('--concurrency <N>', 'updates in flight at once (svm: migrations followed at once)', '4')
    .option('--page-size <N>', 'objects per list page', '500')
    .option('--retries <N>', 'retries of a request on 429/5xx/network errors', '8')
    .option('--checkpoint <FILE>', 'keep progress here; a rerun with the same file resumes')
    .option('--progress-every <N>', 'without a terminal: one JSON progress line per N objects', '1000')
    .option('--svm-timeout <DURATION>', 'svm: fail a migration that shows no condition for this long', '2m')
    .option('--json', 'print the summary as JSON')
    .option(
      '--verify',
      'afterwards, run the census over etcd (needs the etcd flags) and report objects still under the old key',
    )
    .option('--old-version <V>', 'with --verify: the old KEK version / key_id / key name to look for');
  addEtcdFlags(cmd).action(async (opts: Flags) => {
    process.exitCode = await reencryptCommand(opts);
  });
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

async function reencryptCommand(opts: Flags): Promise<number> {
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
