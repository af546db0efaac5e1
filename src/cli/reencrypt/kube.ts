/**
 * The Kubernetes API, through the official @kubernetes/client-node: its KubeConfig (kubeconfig
 * file, KUBECONFIG, in-cluster service account; exec / OIDC / token-file auth; TLS) and its HTTP
 * library. Objects travel as raw JSON, never through the client's typed models: a no-op update
 * must send back exactly what the server returned, and the typed serializer drops every field its
 * model does not know (a newer apiserver's fields, custom resources).
 *
 * Errors become KubeError with the HTTP status, the Status reason, a message safe to print and,
 * for 429/503, the server's Retry-After.
 */
import { existsSync } from 'node:fs';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent, type AgentOptions } from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import {
  HttpMethod,
  KubeConfig,
  ServerConfiguration,
  createConfiguration,
  type Configuration,
} from '@kubernetes/client-node';
import { ConfigError } from '../../errors.js';
import { parseRetryAfter } from '../../kek/retry-after.js';

const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export class KubeError extends Error {
  /** HTTP status; 0 when no response arrived (network error). */
  readonly status: number;
  /** The Status object's reason (Conflict, NotFound, Invalid, Expired, TooManyRequests, …). */
  readonly reason: string;
  /** Retry-After in ms, when the server sent one. */
  readonly retryAfterMs: number | undefined;
  /** The Status object's metadata.continue (a 410 on a list can carry a fresh continue token). */
  readonly continueToken: string | undefined;

  constructor(
    status: number,
    reason: string,
    message: string,
    extra: { retryAfterMs?: number; continueToken?: string } = {},
  ) {
    super(message);
    this.name = 'KubeError';
    this.status = status;
    this.reason = reason;
    this.retryAfterMs = extra.retryAfterMs;
    this.continueToken = extra.continueToken;
  }
}

export interface KubeRequest {
  method: 'GET' | 'PUT' | 'POST';
  /** Absolute API path, e.g. /api/v1/namespaces/ns/secrets/name. */
  path: string;
  query?: Record<string, string | number | undefined>;
  body?: unknown;
}

/** What the reencrypt engine needs from a Kubernetes API client (a fake in unit tests). */
export interface KubeTransport {
  request<T = unknown>(req: KubeRequest): Promise<T>;
  /** The API server URL (for messages). */
  readonly server: string;
}

/**
 * Loads the client configuration: `kubeconfig` (the flag), else KUBECONFIG, else ~/.kube/config,
 * else the in-cluster service account. Unlike KubeConfig.loadFromDefault, never falls back to
 * http://localhost:8080.
 */
export function loadKubeConfig(kubeconfig?: string, context?: string): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (kubeconfig) kc.loadFromFile(kubeconfig);
    else if (process.env.KUBECONFIG) kc.loadFromDefault();
    else if (existsSync(join(homedir(), '.kube', 'config'))) kc.loadFromDefault();
    else if (process.env.KUBERNETES_SERVICE_HOST && existsSync(IN_CLUSTER_TOKEN)) kc.loadFromCluster();
    else {
      throw new ConfigError(
        '--kubeconfig',
        'no Kubernetes client configuration: give --kubeconfig FILE, set KUBECONFIG, or run in a pod with a service account',
      );
    }
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(
      '--kubeconfig',
      `cannot load ${kubeconfig ?? process.env.KUBECONFIG ?? 'the kubeconfig'}: ${(err as Error).message}`,
    );
  }
  if (context) {
    if (!kc.getContextObject(context))
      throw new ConfigError('--context', `no context ${JSON.stringify(context)} in the kubeconfig`);
    kc.setCurrentContext(context);
  }
  if (!kc.getCurrentCluster())
    throw new ConfigError('--kubeconfig', 'the kubeconfig has no current context / cluster');
  return kc;
}

export class KubeClient implements KubeTransport {
  readonly server: string;
  private readonly config: Configuration;

  constructor(private readonly kc: KubeConfig) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new ConfigError('--kubeconfig', 'the kubeconfig has no current cluster');
    this.server = cluster.server.replace(/\/+$/, '');
    this.config = createConfiguration({
      baseServer: new ServerConfiguration(this.server, {}),
      authMethods: { default: kc },
    });
  }

  private reused: { fingerprint: string; agent: HttpAgent } | undefined;

  /**
   * The client builds a new agent (so a new TLS handshake) for every request. Reuse one
   * keep-alive agent while the TLS settings stay the same (exec plugins may rotate client
   * certificates: a change makes a new agent). Proxy agents are left alone.
   */
  private keepAlive(agent: HttpAgent | undefined): HttpAgent | undefined {
    if (!agent || (agent.constructor !== HttpsAgent && agent.constructor !== HttpAgent)) return undefined;
    const o = (agent as HttpAgent & { options: AgentOptions }).options;
    const fingerprint = JSON.stringify([
      agent.constructor === HttpsAgent,
      String(o.ca ?? ''),
      String(o.cert ?? ''),
      String(o.key ?? ''),
      o.rejectUnauthorized,
      o.servername,
    ]);
    if (this.reused?.fingerprint !== fingerprint) {
      this.reused?.agent.destroy();
      const options = { ...o, keepAlive: true };
      this.reused = {
        fingerprint,
        agent: agent.constructor === HttpsAgent ? new HttpsAgent(options) : new HttpAgent(options),
      };
    }
    agent.destroy();
    return this.reused.agent;
  }

  /** Closes kept-alive connections. */
  close(): void {
    this.reused?.agent.destroy();
    this.reused = undefined;
  }

  async request<T = unknown>(req: KubeRequest): Promise<T> {
    const ctx = this.config.baseServer.makeRequestContext(req.path, HttpMethod[req.method]);
    for (const [k, v] of Object.entries(req.query ?? {}))
      if (v !== undefined) ctx.setQueryParam(k, String(v));
    ctx.setHeaderParam('Accept', 'application/json');
    if (req.body !== undefined) {
      ctx.setHeaderParam('Content-Type', 'application/json');
      ctx.setBody(JSON.stringify(req.body));
    }
    await this.kc.applySecurityAuthentication(ctx);
    const agent = this.keepAlive(ctx.getAgent());
    if (agent) ctx.setAgent(agent);
    let status: number;
    let headers: Record<string, string>;
    let text: string;
    try {
      const res = await this.config.httpApi.send(ctx).toPromise();
      status = res.httpStatusCode;
      headers = res.headers;
      text = await res.body.text();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new KubeError(
        0,
        'NetworkError',
        `cannot reach ${this.server}: ${code ?? (err as Error).message}`,
      );
    }
    if (status >= 200 && status < 300) {
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new KubeError(status, 'BadResponse', `${req.method} ${req.path}: the response is not JSON`);
      }
    }
    throw kubeErrorFrom(status, headers, text, req);
  }
}

interface StatusObject {
  kind?: string;
  reason?: string;
  message?: string;
  metadata?: { continue?: string };
  details?: { causes?: Array<{ field?: string; reason?: string }> };
}

/** Builds a KubeError from an error response. Never copies an Invalid message (it can quote field values). */
export function kubeErrorFrom(
  status: number,
  headers: Record<string, string>,
  text: string,
  req: Pick<KubeRequest, 'method' | 'path'>,
): KubeError {
  let s: StatusObject = {};
  try {
    const parsed = JSON.parse(text) as StatusObject;
    if (parsed && typeof parsed === 'object') s = parsed;
  } catch {
    // not a Status object
  }
  const reason = s.reason || defaultReason(status);
  let message: string;
  if (status === 422 || reason === 'Invalid') {
    const causes = (s.details?.causes ?? [])
      .map((c) => `${c.field ?? '?'}: ${c.reason ?? 'invalid'}`)
      .slice(0, 5)
      .join('; ');
    message = `rejected as invalid${causes ? ` (${causes})` : ''}`;
  } else {
    message = (s.message ?? `${req.method} ${req.path}`).slice(0, 300);
  }
  return new KubeError(status, reason, message, {
    retryAfterMs: parseRetryAfter(headers['retry-after']),
    continueToken: s.metadata?.continue || undefined,
  });
}

function defaultReason(status: number): string {
  const names: Record<number, string> = {
    400: 'BadRequest',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'NotFound',
    405: 'MethodNotAllowed',
    409: 'Conflict',
    410: 'Expired',
    422: 'Invalid',
    429: 'TooManyRequests',
    500: 'InternalError',
    503: 'ServiceUnavailable',
    504: 'Timeout',
  };
  return names[status] ?? `HTTP${status}`;
}

// Retry-After has one parser, shared with the KEK providers' remote calls.
export { parseRetryAfter };
