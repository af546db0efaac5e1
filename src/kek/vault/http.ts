/**
 * A small typed Vault HTTP client on undici's fetch: `X-Vault-Token`, `X-Vault-Namespace`, JSON
 * bodies, the caller's AbortSignal, and a custom CA / client certificate / server name through an
 * undici Agent. It does no retries and no classification: RemoteCaller and ./errors.ts do that.
 *
 * Non-2xx answers throw VaultHttpError with Vault's `errors` array, after scrubbing anything that
 * was sent in the request (token, body values) out of it, with the shared scrubber.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { Agent, fetch } from 'undici';
import type { CredentialFile } from '../credential-file.js';
import { scrub } from '../errors.js';

export interface VaultTlsMaterial {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  servername?: string;
}

/** Client certificate and key files, re-read when they change (see ../credential-file.ts). */
export interface VaultClientCertificate {
  cert: CredentialFile<string>;
  key: CredentialFile<string>;
}

export interface VaultHttpOptions {
  /** Base address without /v1, e.g. https://vault:8200. */
  address: string;
  namespace?: string;
  tls?: VaultTlsMaterial;
  /** Client certificate files to follow; a changed pair gets a new connection pool. */
  clientCertificate?: VaultClientCertificate;
  /** Largest response body read (bytes). */
  maxResponseBytes?: number;
}

export interface VaultRequest {
  token?: string;
  body?: Record<string, unknown>;
  signal: AbortSignal;
}

/** Vault answered with a non-2xx status. `errors` is already scrubbed of request secrets. */
export class VaultHttpError extends Error {
  constructor(
    readonly status: number,
    readonly errors: string[],
    readonly method: string,
    readonly path: string,
    /** The response's retry hints only (`retry-after`, ...), for RemoteCaller; no other header. */
    readonly headers: Record<string, string> = {},
  ) {
    super(`Vault ${method} /v1/${path}: HTTP ${status}${errors.length ? `: ${errors.join('; ')}` : ''}`);
    this.name = 'VaultHttpError';
  }
}

const RETRY_HEADERS = ['retry-after', 'retry-after-ms', 'x-ms-retry-after-ms'];

function retryHeaders(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of RETRY_HEADERS) {
    const v = headers.get(h);
    if (v !== null) out[h] = v;
  }
  return out;
}

/** The response was 2xx but not the JSON Vault sends. */
export class VaultProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VaultProtocolError';
  }
}

export class VaultHttp {
  readonly address: string;
  readonly namespace: string | undefined;
  private agent: Agent;
  private readonly maxResponseBytes: number;
  private readonly tls: VaultTlsMaterial;
  private readonly clientCertificate: VaultClientCertificate | undefined;
  /** Versions of the certificate and key files the current agent was built with. */
  private certVersions = '';

  constructor(options: VaultHttpOptions) {
    this.address = options.address.replace(/\/+$/, '');
    this.namespace = options.namespace;
    this.maxResponseBytes = options.maxResponseBytes ?? 1 << 20;
    this.tls = options.tls ?? {};
    this.clientCertificate = options.clientCertificate;
    this.agent = this.newAgent(this.tls);
    if (this.clientCertificate) {
      try {
        this.clientCertificate.cert.get();
        this.clientCertificate.key.get();
      } catch {
        // the files were read for `tls` just before; a failure here shows at the first request
      }
      this.certVersions = this.versions(this.clientCertificate);
    }
  }

  private newAgent(tls: VaultTlsMaterial): Agent {
    return new Agent({
      connect: {
        ...(tls.ca ? { ca: tls.ca } : {}),
        ...(tls.cert ? { cert: tls.cert } : {}),
        ...(tls.key ? { key: tls.key } : {}),
        ...(tls.servername ? { servername: tls.servername } : {}),
      },
      keepAliveTimeout: 30_000,
      connections: 32,
    });
  }

  private versions(c: VaultClientCertificate): string {
    return `${c.cert.version}:${c.key.version}`;
  }

  /**
   * The agent for the next request: when the client certificate or key file changed (and the new
   * pair matches), a new agent with the new pair; in-flight requests finish on the old one. A
   * half-rotated pair (new certificate, old key) keeps the old agent until both match.
   */
  private currentAgent(): Agent {
    const c = this.clientCertificate;
    if (!c) return this.agent;
    let cert: string;
    let key: string;
    try {
      cert = c.cert.get();
      key = c.key.get();
    } catch {
      return this.agent; // nothing usable on disk and the old pair expired: the handshake will say so
    }
    const versions = this.versions(c);
    if (versions === this.certVersions) return this.agent;
    try {
      if (!new X509Certificate(cert).checkPrivateKey(createPrivateKey(key))) return this.agent;
    } catch {
      return this.agent;
    }
    const old = this.agent;
    this.agent = this.newAgent({ ...this.tls, cert: Buffer.from(cert), key: Buffer.from(key) });
    this.certVersions = versions;
    void old.close().catch(() => undefined);
    return this.agent;
  }

  /** Sends one request to `/v1/<path>`; resolves to the parsed JSON body (undefined for 204). */
  async request<T>(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    path: string,
    req: VaultRequest,
  ): Promise<T | undefined> {
    const headers: Record<string, string> = { accept: 'application/json', 'x-vault-request': 'true' };
    if (req.token !== undefined) headers['x-vault-token'] = req.token;
    if (this.namespace) headers['x-vault-namespace'] = this.namespace;
    let payload: string | undefined;
    if (req.body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(req.body);
    }
    const res = await fetch(`${this.address}/v1/${path}`, {
      method,
      headers,
      body: payload,
      signal: req.signal,
      dispatcher: this.currentAgent(),
      redirect: 'manual',
    });
    const text = await readBounded(res, this.maxResponseBytes);
    if (res.status < 200 || res.status >= 300) {
      const secrets = [
        req.token ?? '',
        ...Object.values(req.body ?? {}).filter((v): v is string => typeof v === 'string'),
      ];
      let errors = parseErrors(text).map((e) => scrub(e, { secrets }));
      if (res.status >= 300 && res.status < 400) {
        errors = [
          `redirected (HTTP ${res.status}) to ${scrub(res.headers.get('location') ?? 'an unnamed location')}`,
        ];
      }
      throw new VaultHttpError(res.status, errors, method, path, retryHeaders(res.headers));
    }
    if (res.status === 204 || text.trim() === '') return undefined;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new VaultProtocolError(
        `Vault ${method} /v1/${path}: HTTP ${res.status} with a body that is not JSON`,
      );
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

async function readBounded(res: Awaited<ReturnType<typeof fetch>>, max: number): Promise<string> {
  if (!res.body) return '';
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    const buf = Buffer.from(chunk as Uint8Array);
    size += buf.length;
    if (size > max) throw new VaultProtocolError(`Vault response larger than ${max} bytes`);
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseErrors(text: string): string[] {
  try {
    const parsed = JSON.parse(text) as { errors?: unknown };
    if (Array.isArray(parsed.errors)) return parsed.errors.filter((e): e is string => typeof e === 'string');
  } catch {
    // not JSON: fall through
  }
  return text.trim() ? [text.trim().slice(0, 200)] : [];
}
