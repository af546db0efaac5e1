/**
 * A small typed Vault HTTP client on undici's fetch: `X-Vault-Token`, `X-Vault-Namespace`, JSON
 * bodies, the caller's AbortSignal, and a custom CA / client certificate / server name through an
 * undici Agent. It does no retries and no classification: RemoteCaller and ./errors.ts do that.
 *
 * Non-2xx answers throw VaultHttpError with Vault's `errors` array, after scrubbing anything that
 * was sent in the request (token, body values) out of it.
 */
import { Agent, fetch } from 'undici';

export interface VaultTlsMaterial {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  servername?: string;
}

export interface VaultHttpOptions {
  /** Base address without /v1, e.g. https://vault:8200. */
  address: string;
  namespace?: string;
  tls?: VaultTlsMaterial;
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
  ) {
    super(`Vault ${method} /v1/${path}: HTTP ${status}${errors.length ? `: ${errors.join('; ')}` : ''}`);
    this.name = 'VaultHttpError';
  }
}

/** The response was 2xx but not the JSON Vault sends. */
export class VaultProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VaultProtocolError';
  }
}

const TOKEN_PATTERN = /\b(?:hv[sbr]|s|b|r)\.[A-Za-z0-9_-]{8,}/g;
const JWT_PATTERN = /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g;

/** Removes `secrets` and anything shaped like a Vault token or a JWT from `text`, and caps its length. */
export function scrub(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join('[redacted]');
  out = out.replace(TOKEN_PATTERN, '[redacted]').replace(JWT_PATTERN, '[redacted]');
  out = out.replace(/\s+/g, ' ').trim();
  return out.length > 300 ? `${out.slice(0, 300)}…` : out;
}

export class VaultHttp {
  readonly address: string;
  readonly namespace: string | undefined;
  private readonly agent: Agent;
  private readonly maxResponseBytes: number;

  constructor(options: VaultHttpOptions) {
    this.address = options.address.replace(/\/+$/, '');
    this.namespace = options.namespace;
    this.maxResponseBytes = options.maxResponseBytes ?? 1 << 20;
    const tls = options.tls ?? {};
    this.agent = new Agent({
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
      dispatcher: this.agent,
      redirect: 'manual',
    });
    const text = await readBounded(res, this.maxResponseBytes);
    if (res.status < 200 || res.status >= 300) {
      const secrets = [
        req.token ?? '',
        ...Object.values(req.body ?? {}).filter((v): v is string => typeof v === 'string'),
      ];
      let errors = parseErrors(text).map((e) => scrub(e, secrets));
      if (res.status >= 300 && res.status < 400) {
        errors = [
          `redirected (HTTP ${res.status}) to ${scrub(res.headers.get('location') ?? 'an unnamed location')}`,
        ];
      }
      throw new VaultHttpError(res.status, errors, method, path);
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
