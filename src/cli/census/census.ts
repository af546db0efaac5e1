/**
 * The census: a read-only pass over etcd that counts the objects of each resource by what
 * protects them (design §8.4). Pages through each resource's key range at one store revision,
 * so memory stays bounded whatever the object count; keeps only counters.
 *
 * runCensus() is the core `census`, `rotate --retire` and `reencrypt --verify` share.
 */
import { InvalidInputError } from '../../errors.js';
import { connectEtcd, prefixEnd, type EtcdConnection, type EtcdOptions } from '../etcd/connect.js';
import { classifyValue, type Classification, type Protection } from './classify.js';
import {
  expandResources,
  hasWildcard,
  resourcesFromEncryptionConfig,
  targetsForPresent,
  type ResourceTarget,
} from './resources.js';

/** At most this many distinct DEK ids are listed per group; the rest are counted in dekIdsOther. */
export const MAX_DEK_IDS = 16;

export interface CensusGroup extends Omit<Classification, 'dekId'> {
  resource: string;
  count: number;
  /** Values this plugin wrote: objects per DEK id (the first MAX_DEK_IDS ids). */
  dekIds?: Record<string, number>;
  /** Objects under DEK ids beyond the listed ones. */
  dekIdsOther?: number;
}

export interface CensusResource {
  resource: string;
  /** Key prefix read ("/registry/secrets/"). */
  keyPrefix: string;
  count: number;
}

export interface CensusReport {
  etcdPrefix: string;
  /** etcd store revision every page was read at. */
  revision: string;
  resources: CensusResource[];
  groups: CensusGroup[];
  total: number;
  elapsedMs: number;
  objectsPerSecond: number;
  /** True when stopped (signal) before the end: counts are partial. */
  interrupted: boolean;
}

export interface CensusOptions {
  /** etcd connection settings (a connection is opened and closed), or an open connection. */
  etcd: EtcdOptions | { connection: EtcdConnection; prefix: string };
  /** Resource names ("secrets", "deployments.apps", "*.apps", "*.*"). */
  resources?: string[];
  /** An EncryptionConfiguration file: every resource it lists. */
  encryptionConfig?: string;
  /** Keys per etcd range request (default 500). */
  pageSize?: number;
  /** Called after each page: objects just counted, the resource, and the running total. */
  onProgress?: (n: number, resource: string) => void;
  /** Called once the per-resource key counts are known (before reading values). */
  onTotal?: (total: number) => void;
  /** Stops after the page in flight; the report is marked interrupted. */
  signal?: AbortSignal;
}

/** Resolves the resources to read (expanding wildcards against what etcd holds). */
export async function resolveTargets(
  conn: EtcdConnection,
  prefix: string,
  names: string[],
): Promise<ResourceTarget[]> {
  const present = hasWildcard(names) ? targetsForPresent(await presentPaths(conn, prefix)) : [];
  return expandResources(names, present);
}

/**
 * The storage paths present below the prefix: each first segment, and for aggregated/custom
 * groups (segments with a dot) and `services`, each second segment. A skip scan: one keys-only
 * request of limit 1 per path found, whatever the object count.
 */
export async function presentPaths(conn: EtcdConnection, prefix: string): Promise<string[]> {
  const base = `${prefix}/`;
  const segments = await distinctSegments(conn, base);
  const out: string[] = [];
  for (const s of segments) {
    if (s.includes('.') || s === 'services') {
      for (const sub of await distinctSegments(conn, `${base}${s}/`)) out.push(`${s}/${sub}`);
    } else out.push(s);
  }
  return out;
}

async function distinctSegments(conn: EtcdConnection, base: string): Promise<string[]> {
  const baseBuf = Buffer.from(base);
  const end = prefixEnd(baseBuf);
  const out: string[] = [];
  let cursor: Buffer = baseBuf;
  for (let i = 0; i < 100_000; i++) {
    const page = await conn.range(cursor, end, 1, undefined, true);
    if (page.kvs.length === 0) break;
    const rest = page.kvs[0].key.subarray(baseBuf.length).toString('utf8');
    const slash = rest.indexOf('/');
    if (slash <= 0) {
      // a key directly at this level (no deeper path): step past it
      cursor = Buffer.concat([page.kvs[0].key, Buffer.from([0])]);
      continue;
    }
    const seg = rest.slice(0, slash);
    out.push(seg);
    cursor = prefixEnd(Buffer.from(`${base}${seg}/`));
  }
  return out;
}

function groupKey(resource: string, c: Classification): string {
  return JSON.stringify([
    resource,
    c.protection,
    c.keyName,
    c.providerName,
    c.keyId,
    c.dekSourceType,
    c.kekProvider,
    c.kekKey,
    c.kekVersion,
    c.reason,
  ]);
}

export async function runCensus(options: CensusOptions): Promise<CensusReport> {
  const started = performance.now();
  const names = [...(options.resources ?? [])];
  if (options.encryptionConfig !== undefined) {
    for (const n of resourcesFromEncryptionConfig(options.encryptionConfig))
      if (!names.includes(n)) names.push(n);
  }
  if (names.length === 0)
    throw new InvalidInputError('census: name the resources (--resource or --encryption-config)');
  const pageSize = options.pageSize ?? 500;
  if (!Number.isSafeInteger(pageSize) || pageSize < 1)
    throw new InvalidInputError('census: page size must be a positive integer');

  let conn: EtcdConnection;
  let prefix: string;
  let owned = false;
  if ('connection' in options.etcd) {
    conn = options.etcd.connection;
    prefix = options.etcd.prefix;
  } else {
    conn = await connectEtcd(options.etcd);
    prefix = options.etcd.prefix;
    owned = true;
  }
  try {
    const targets = await resolveTargets(conn, prefix, names);
    // One snapshot for the whole pass: the revision of the first read.
    const first = await conn.range(
      Buffer.from(`${prefix}/`),
      prefixEnd(Buffer.from(`${prefix}/`)),
      1,
      undefined,
      true,
    );
    const revision = first.revision;

    const resources: CensusResource[] = targets.map((t) => ({
      resource: t.resource,
      keyPrefix: `${prefix}/${t.path}/`,
      count: 0,
    }));
    if (options.onTotal) {
      let total = 0;
      for (const r of resources) total += await countKeys(conn, r.keyPrefix, revision);
      options.onTotal(total);
    }

    const groups = new Map<string, CensusGroup>();
    let total = 0;
    let interrupted = false;
    for (const r of resources) {
      if (options.signal?.aborted) {
        interrupted = true;
        break;
      }
      const startKey = Buffer.from(r.keyPrefix);
      const end = prefixEnd(startKey);
      let next: Promise<Awaited<ReturnType<EtcdConnection['range']>>> | undefined = conn.range(
        startKey,
        end,
        pageSize,
        revision,
      );
      while (next) {
        const page = await next;
        next = undefined;
        if (page.more && page.kvs.length > 0) {
          const last = page.kvs[page.kvs.length - 1].key;
          // read the next page while this one is classified
          next = conn.range(Buffer.concat([last, Buffer.from([0])]), end, pageSize, revision);
          next.catch(() => undefined); // awaited on the next turn; avoid an unhandled rejection meanwhile
        }
        for (const kv of page.kvs) {
          const c = classifyValue(kv.value);
          const key = groupKey(r.resource, c);
          let g = groups.get(key);
          if (!g) {
            const { dekId: _omit, ...rest } = c;
            g = { resource: r.resource, ...rest, count: 0 };
            groups.set(key, g);
          }
          g.count++;
          if (c.dekId !== undefined) {
            g.dekIds ??= {};
            if (c.dekId in g.dekIds) g.dekIds[c.dekId]++;
            else if (Object.keys(g.dekIds).length < MAX_DEK_IDS) g.dekIds[c.dekId] = 1;
            else g.dekIdsOther = (g.dekIdsOther ?? 0) + 1;
          }
        }
        r.count += page.kvs.length;
        total += page.kvs.length;
        options.onProgress?.(page.kvs.length, r.resource);
        if (next && options.signal?.aborted) {
          interrupted = true;
          await next.catch(() => undefined);
          next = undefined;
        }
      }
      if (interrupted) break;
    }
    const elapsedMs = performance.now() - started;
    return {
      etcdPrefix: prefix,
      revision,
      resources,
      groups: [...groups.values()],
      total,
      elapsedMs: Math.round(elapsedMs),
      objectsPerSecond: elapsedMs > 0 ? Math.round((total / elapsedMs) * 1000) : 0,
      interrupted,
    };
  } finally {
    if (owned) conn.close();
  }
}

async function countKeys(conn: EtcdConnection, keyPrefix: string, revision: string): Promise<number> {
  // keys-only pages: counts without transferring values (etcd3's count_only is not exposed by range())
  const start = Buffer.from(keyPrefix);
  const end = prefixEnd(start);
  let cursor: Buffer = start;
  let n = 0;
  for (;;) {
    const page = await conn.range(cursor, end, 10_000, revision, true);
    n += page.kvs.length;
    if (!page.more || page.kvs.length === 0) return n;
    cursor = Buffer.concat([page.kvs[page.kvs.length - 1].key, Buffer.from([0])]);
  }
}

/** Which objects a predicate selects, per resource (for --fail-if-version, --can-retire, retire). */
export function countWhere(
  report: CensusReport,
  pick: (g: CensusGroup) => boolean,
): { total: number; byResource: Record<string, number> } {
  const byResource: Record<string, number> = {};
  let total = 0;
  for (const g of report.groups) {
    if (!pick(g)) continue;
    byResource[g.resource] = (byResource[g.resource] ?? 0) + g.count;
    total += g.count;
  }
  return { total, byResource };
}

/**
 * Objects "under version V": our KEK version V (with kekKey, only that key's), a KMS v2 key_id V,
 * an aescbc/aesgcm/secretbox key named V, or a KMS v1 provider named V.
 */
export function underVersion(version: string, kekKey?: string): (g: CensusGroup) => boolean {
  return (g) => {
    if (kekKey !== undefined) return g.kekKey === kekKey && g.kekVersion === version;
    if (g.kekVersion === version) return true;
    if (g.protection === 'kms-v2' && g.keyId === version) return true;
    if (
      (g.protection === 'aescbc' || g.protection === 'aesgcm' || g.protection === 'secretbox') &&
      g.keyName === version
    )
      return true;
    return g.protection === 'kms-v1' && g.providerName === version;
  };
}

/** Objects not under KMS v2 key_id ID (for --expect-key-id). */
export function notUnderKeyId(keyId: string): (g: CensusGroup) => boolean {
  return (g) => !(g.protection === 'kms-v2' && g.keyId === keyId);
}

export type { Protection };
