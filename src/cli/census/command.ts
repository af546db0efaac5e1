/**
 * `census`: count the objects of each resource by what protects them, reading etcd directly
 * (read-only). A table (or --json), a progress bar on a TTY, exit codes for scripts:
 *
 *   0  done (and every check passed)
 *   3  --fail-if-version V: objects are still under V; --expect-key-id ID: objects are not under
 *      ID; --can-retire V: V cannot be retired (objects under it)
 *   2  bad flags, 1 etcd unreachable / TLS failure, 130 interrupted
 */
import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { addEtcdFlags, etcdOptionsFrom } from '../etcd/connect.js';
import { createProgress } from '../progress.js';
import { parseResourceList } from './resources.js';
import {
  countWhere,
  notUnderKeyId,
  runCensus,
  underVersion,
  type CensusGroup,
  type CensusReport,
} from './census.js';

export const EXIT_CHECK_FAILED = 3;

export interface CensusCheck {
  name: 'fail-if-version' | 'expect-key-id' | 'can-retire';
  value: string;
  ok: boolean;
  objects: number;
  byResource: Record<string, number>;
}

export function detail(g: CensusGroup): string {
  const parts: string[] = [];
  if (g.keyName !== undefined) parts.push(`key=${g.keyName}`);
  if (g.providerName !== undefined) parts.push(`provider=${g.providerName}`);
  if (g.keyId !== undefined) parts.push(`key_id=${g.keyId}`);
  if (g.dekSourceType !== undefined) parts.push(`dek_source=${g.dekSourceType}`);
  if (g.kekProvider !== undefined)
    parts.push(`kek=${g.kekProvider}:${g.kekKey ?? ''} version=${g.kekVersion ?? ''}`);
  if (g.dekIds !== undefined) {
    const n = Object.keys(g.dekIds).length;
    parts.push(`deks=${n}${g.dekIdsOther ? '+' : ''}`);
  }
  if (g.reason !== undefined) parts.push(g.reason);
  return parts.join(' ');
}

export function formatCensus(report: CensusReport, checks: CensusCheck[] = []): string {
  const rows: string[][] = [['RESOURCE', 'PROTECTION', 'OBJECTS', 'DETAIL']];
  for (const r of report.resources) {
    const gs = report.groups.filter((g) => g.resource === r.resource).sort((a, b) => b.count - a.count);
    if (gs.length === 0) rows.push([r.resource, '(none)', '0', `no keys under ${r.keyPrefix}`]);
    for (const g of gs) rows.push([r.resource, g.protection, String(g.count), detail(g)]);
  }
  const w = [0, 1, 2].map((i) => Math.max(...rows.map((row) => row[i].length)));
  const lines = rows.map((row) =>
    [row[0].padEnd(w[0]), row[1].padEnd(w[1]), row[2].padStart(w[2]), row[3]].join('  ').trimEnd(),
  );
  const secs = (report.elapsedMs / 1000).toFixed(1);
  lines.push(
    `${report.interrupted ? 'INTERRUPTED: partial counts, ' : ''}${report.total} objects in ${report.resources.length} ${report.resources.length === 1 ? 'resource' : 'resources'}, ` +
      `${secs} s (${report.objectsPerSecond}/s), etcd revision ${report.revision}` +
      (report.movedFromRevision
        ? ` (revision ${report.movedFromRevision} was compacted during the pass; later pages read at the newer one)`
        : ''),
  );
  for (const c of checks) lines.push(formatCheck(c));
  return `${lines.join('\n')}\n`;
}

export function formatCheck(c: CensusCheck): string {
  const per = Object.entries(c.byResource)
    .map(([r, n]) => `${r}=${n}`)
    .join(', ');
  switch (c.name) {
    case 'fail-if-version':
      return c.ok
        ? `OK: no object is under ${c.value}`
        : `FAIL: ${c.objects} objects are still under ${c.value} (${per})`;
    case 'expect-key-id':
      return c.ok
        ? `OK: every object is under key_id ${c.value}`
        : `FAIL: ${c.objects} objects are not under key_id ${c.value} (${per})`;
    case 'can-retire':
      return c.ok
        ? `OK: ${c.value} can be retired: no object in these resources is under it (backups may still need it)`
        : `REFUSED: ${c.value} cannot be retired: ${c.objects} objects are still under it (${per}); re-encrypt them first (k8s-kms-plugin reencrypt)`;
  }
}

export function runChecks(
  report: CensusReport,
  want: { failIfVersion?: string; expectKeyId?: string; canRetire?: string; kekKey?: string },
): CensusCheck[] {
  const out: CensusCheck[] = [];
  const add = (name: CensusCheck['name'], value: string, pick: (g: CensusGroup) => boolean): void => {
    const { total, byResource } = countWhere(report, pick);
    // an interrupted pass proves nothing
    out.push({ name, value, ok: total === 0 && !report.interrupted, objects: total, byResource });
  };
  if (want.failIfVersion !== undefined)
    add('fail-if-version', want.failIfVersion, underVersion(want.failIfVersion, want.kekKey));
  if (want.expectKeyId !== undefined) add('expect-key-id', want.expectKeyId, notUnderKeyId(want.expectKeyId));
  if (want.canRetire !== undefined)
    add('can-retire', want.canRetire, underVersion(want.canRetire, want.kekKey));
  return out;
}

/** --resource / --encryption-config, as runCensus wants them (ConfigError when neither). */
export function resourceSelection(opts: Record<string, unknown>): {
  resources?: string[];
  encryptionConfig?: string;
} {
  const resource = opts.resource as string | undefined;
  const encryptionConfig = opts.encryptionConfig as string | undefined;
  if (resource === undefined && encryptionConfig === undefined) {
    throw new ConfigError(
      '--encryption-config',
      'say which resources to read: --encryption-config FILE (kube-apiserver --encryption-provider-config) or --resource secrets,configmaps',
    );
  }
  return {
    ...(resource !== undefined ? { resources: parseResourceList('--resource', resource) } : {}),
    ...(encryptionConfig !== undefined ? { encryptionConfig } : {}),
  };
}

export function addResourceFlags(cmd: Command): Command {
  return cmd
    .option(
      '--encryption-config <FILE>',
      'kube-apiserver EncryptionConfiguration: every resource it lists (*.apps, *.* expanded to what etcd holds)',
    )
    .option('--resource <LIST>', 'resources to read, comma separated (secrets,configmaps,deployments.apps)')
    .option('--page-size <N>', 'keys per etcd request', '500');
}

export function pageSizeFrom(opts: Record<string, unknown>): number {
  const n = Number(opts.pageSize ?? 500);
  if (!Number.isSafeInteger(n) || n < 1 || n > 100_000)
    throw new ConfigError('--page-size', 'expected a whole number between 1 and 100000');
  return n;
}

/**
 * Runs a census with a progress bar on stderr when it is a TTY, stopping cleanly on Ctrl-C.
 * Shared by `census` and `rotate --retire`.
 */
export async function censusWithProgress(
  opts: Record<string, unknown>,
  label = 'census',
): Promise<CensusReport> {
  const etcd = etcdOptionsFrom(opts);
  const selection = resourceSelection(opts);
  const pageSize = pageSizeFrom(opts);
  const progress = createProgress({
    label,
    stream: process.stderr,
    mode: process.stderr.isTTY ? 'bar' : 'none',
  });
  const abort = new AbortController();
  const onSigint = (): void => abort.abort();
  process.once('SIGINT', onSigint);
  try {
    const report = await runCensus({
      etcd,
      ...selection,
      pageSize,
      signal: abort.signal,
      // the total (a keys-only pass) is only worth its cost when a bar shows it
      ...(progress.mode === 'bar' ? { onTotal: (t: number) => progress.setTotal(t) } : {}),
      onProgress: (n, resource) => progress.tick(n, { resource }),
    });
    progress.done();
    return report;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

export function registerCensus(program: Command): void {
  const cmd = program
    .command('census')
    .description(
      'count the objects of each resource in etcd by what protects them (identity, aescbc/aesgcm/secretbox, ' +
        "KMS v1, KMS v2 key_id, this plugin's KEK version). Read-only; prints no secret",
    );
  addEtcdFlags(cmd);
  addResourceFlags(cmd)
    .option(
      '--fail-if-version <V>',
      `exit ${EXIT_CHECK_FAILED} if any object is still under V (KEK version, key_id, aescbc key name)`,
    )
    .option('--expect-key-id <ID>', `exit ${EXIT_CHECK_FAILED} if any object is not under KMS v2 key_id ID`)
    .option(
      '--can-retire <V>',
      `exit ${EXIT_CHECK_FAILED} (with counts per resource) unless no object is under V`,
    )
    .option(
      '--kek-key <KEY>',
      'with --fail-if-version / --can-retire: only this KEK (key ARN, key file id, …)',
    )
    .option('--json', 'print the report as JSON')
    .action(async (opts: Record<string, unknown>) => {
      const report = await censusWithProgress(opts);
      const checks = runChecks(report, {
        failIfVersion: opts.failIfVersion as string | undefined,
        expectKeyId: opts.expectKeyId as string | undefined,
        canRetire: opts.canRetire as string | undefined,
        kekKey: opts.kekKey as string | undefined,
      });
      if (opts.json) process.stdout.write(`${JSON.stringify({ ...report, checks })}\n`);
      else process.stdout.write(formatCensus(report, checks));
      if (report.interrupted) process.exitCode = 130;
      else if (checks.some((c) => !c.ok)) process.exitCode = EXIT_CHECK_FAILED;
    });
}
