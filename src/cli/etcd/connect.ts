/**
 * Connecting to etcd v3 the way kube-apiserver does (its flag names: --etcd-endpoints,
 * --etcd-cafile, --etcd-certfile, --etcd-keyfile, --etcd-prefix), through the `etcd3` client.
 * Read-only use: census pages through ranges; nothing here writes.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
// Type-only: the etcd3 client (and the gRPC/protobuf loaders it pulls in) is imported when a
// command connects, so `serve` and every other command never load it.
import type { IRangeResponse } from 'etcd3';
import { ConfigError, InvalidInputError, UnavailableError } from '../../errors.js';

export interface EtcdOptions {
  endpoints: string[];
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  /** Key prefix kube-apiserver stores under (--etcd-prefix, default /registry), without a trailing slash. */
  prefix: string;
  /** Deadline of each etcd call (default 30 s). */
  timeoutMs?: number;
}

export interface EtcdKv {
  key: Buffer;
  value: Buffer;
}

export interface EtcdPage {
  kvs: EtcdKv[];
  more: boolean;
  /** Store revision the page was read at. */
  revision: string;
}

export interface EtcdConnection {
  readonly endpoints: string[];
  /**
   * One page of [start, end): at most `limit` keys, read at `revision` when given (so every page of
   * a pass sees one snapshot). keysOnly leaves values empty.
   */
  range(start: Buffer, end: Buffer, limit: number, revision?: string, keysOnly?: boolean): Promise<EtcdPage>;
  close(): void;
}

/** Adds kube-apiserver's etcd flags to a command. */
export function addEtcdFlags(cmd: Command): Command {
  return cmd
    .option(
      '--etcd-endpoints <URLS>',
      'etcd endpoints, comma separated (as kube-apiserver --etcd-servers), e.g. https://127.0.0.1:2379',
    )
    .option('--etcd-cafile <FILE>', 'CA bundle that signed the etcd server certificate')
    .option('--etcd-certfile <FILE>', 'client certificate for etcd (with --etcd-keyfile)')
    .option('--etcd-keyfile <FILE>', 'client key for etcd (with --etcd-certfile)')
    .option('--etcd-prefix <PREFIX>', 'key prefix kube-apiserver stores under', '/registry');
}

/** True when any etcd flag was given (commands that only optionally read etcd use this). */
export function hasEtcdFlags(opts: Record<string, unknown>): boolean {
  return (
    opts.etcdEndpoints !== undefined ||
    opts.etcdCafile !== undefined ||
    opts.etcdCertfile !== undefined ||
    opts.etcdKeyfile !== undefined
  );
}

/** Validates the parsed flags (ConfigError naming the flag). Does not read the files. */
export function etcdOptionsFrom(opts: Record<string, unknown>): EtcdOptions {
  const raw = opts.etcdEndpoints;
  if (typeof raw !== 'string' || raw.trim() === '') {
    throw new ConfigError(
      '--etcd-endpoints',
      'give the etcd endpoints kube-apiserver uses (its --etcd-servers), e.g. --etcd-endpoints https://127.0.0.1:2379',
    );
  }
  const endpoints = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const e of endpoints) {
    let u: URL;
    try {
      u = new URL(e);
    } catch {
      throw new ConfigError('--etcd-endpoints', `${JSON.stringify(e)} is not a URL like https://host:2379`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:')
      throw new ConfigError('--etcd-endpoints', `${JSON.stringify(e)}: use http:// or https://`);
  }
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
  const certFile = str(opts.etcdCertfile);
  const keyFile = str(opts.etcdKeyfile);
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new ConfigError(
      certFile === undefined ? '--etcd-certfile' : '--etcd-keyfile',
      'give --etcd-certfile and --etcd-keyfile together (the client certificate and its key)',
    );
  }
  let prefix = str(opts.etcdPrefix) ?? '/registry';
  if (!prefix.startsWith('/')) prefix = `/${prefix}`;
  prefix = prefix.replace(/\/+$/, '');
  return { endpoints, caFile: str(opts.etcdCafile), certFile, keyFile, prefix };
}

function readPem(flag: string, path: string | undefined): Buffer | undefined {
  if (path === undefined) return undefined;
  let b: Buffer;
  try {
    b = readFileSync(path);
  } catch (err) {
    throw new ConfigError(flag, `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (!b.toString('latin1').includes('-----BEGIN ')) throw new ConfigError(flag, `${path} is not a PEM file`);
  return b;
}

/**
 * Opens a client and checks it can read (one keys-only range of the prefix). Unreachable etcd, a
 * TLS failure or a refused client certificate become an UnavailableError naming the endpoints and
 * the likely flag to check.
 */
export async function connectEtcd(options: EtcdOptions): Promise<EtcdConnection> {
  quietIpServername();
  const ca = readPem('--etcd-cafile', options.caFile);
  const cert = readPem('--etcd-certfile', options.certFile);
  const key = readPem('--etcd-keyfile', options.keyFile);
  const secure = options.endpoints.some((e) => e.startsWith('https:'));
  if (!secure && (ca || cert))
    throw new ConfigError(
      '--etcd-endpoints',
      'TLS files were given but the endpoints are http://; use https://',
    );
  const timeoutMs = options.timeoutMs ?? 30_000;
  const noRetry = { execute: <T>(fn: () => Promise<T> | T) => Promise.resolve(fn()) };
  const { Etcd3 } = await import('etcd3');
  const client = new Etcd3({
    hosts: options.endpoints,
    ...(ca || cert
      ? // no --etcd-cafile: grpc uses the system roots (rootCertificate null)
        {
          credentials: {
            rootCertificate: ca ?? (null as unknown as Buffer),
            privateKey: key,
            certChain: cert,
          },
        }
      : {}),
    dialTimeout: timeoutMs,
    // kube-apiserver sets no receive limit either: one page of large objects can pass 4 MiB
    grpcOptions: { 'grpc.max_receive_message_length': -1 },
    defaultCallOptions: () => ({ deadline: Date.now() + timeoutMs }),
    // One clear error instead of the client's retries and circuit breaker.
    faultHandling: { host: () => noRetry as never, global: noRetry as never },
  });
  const conn: EtcdConnection = {
    endpoints: options.endpoints,
    async range(start, end, limit, revision, keysOnly) {
      let res: IRangeResponse;
      try {
        res = await client.kv.range({
          key: start,
          range_end: end,
          limit,
          ...(revision !== undefined ? { revision } : {}),
          ...(keysOnly ? { keys_only: true } : {}),
        });
      } catch (err) {
        throw etcdError(err, options);
      }
      return {
        kvs: (res.kvs ?? []).map((kv) => ({ key: kv.key, value: kv.value })),
        more: res.more === true,
        revision: String(res.header.revision),
      };
    },
    close() {
      client.close();
    },
  };
  try {
    const probe = Buffer.from(`${options.prefix}/`);
    await conn.range(probe, prefixEnd(probe), 1, undefined, true);
  } catch (err) {
    client.close();
    throw err;
  }
  return conn;
}

let quieted = false;
/**
 * grpc-js sends the endpoint's IP address as TLS server name for https://127.0.0.1:2379, which
 * Node reports as deprecation DEP0123 on every run; the certificate is still checked against the
 * IP. Drop that one warning (other warnings still print).
 */
function quietIpServername(): void {
  if (quieted) return;
  quieted = true;
  const previous = process.listeners('warning');
  process.removeAllListeners('warning');
  process.on('warning', (w: Error & { code?: string }) => {
    if (w.code === 'DEP0123') return;
    for (const l of previous) l(w);
  });
}

/** A read at a revision etcd has compacted away (kube-apiserver compacts every 5 minutes). */
export class EtcdCompactedError extends InvalidInputError {}

function etcdError(err: unknown, options: EtcdOptions): Error {
  const msg = err instanceof Error ? err.message : String(err);
  const where = options.endpoints.join(',');
  let hint = 'check --etcd-endpoints and that etcd is running';
  if (/bad certificate|alert number 42|certificate required|alert number 116/i.test(msg))
    hint =
      'etcd refused the client certificate: check --etcd-certfile/--etcd-keyfile (and that etcd trusts their CA)';
  else if (/certificate|ssl|tls|handshake|self.signed|verify/i.test(msg))
    hint = 'TLS failed: check --etcd-cafile (the CA of the etcd server) and --etcd-certfile/--etcd-keyfile';
  else if (/permission|auth|unauthenticated/i.test(msg))
    hint = 'etcd refused the client: check --etcd-certfile/--etcd-keyfile';
  else if (/compacted/i.test(msg)) {
    return new EtcdCompactedError(`etcd ${where}: the requested revision has been compacted`);
  }
  return new UnavailableError(`etcd ${where}: ${firstLine(msg)} (${hint})`);
}

function firstLine(s: string): string {
  return s
    .split('\n')[0]
    .replace(/\s*Resolution note:\s*$/, '')
    .replace(/^\d+ [A-Z_]+: /, '')
    .slice(0, 300);
}

/** The range end that covers every key starting with `prefix` (etcd's "prefix + 1"). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
