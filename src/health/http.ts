/**
 * Health and metrics HTTP endpoints (node:http, loopback by default, GET/HEAD only):
 *
 * - `/livez`   the process and its event loop are alive. Never calls anything remote.
 * - `/readyz`  a write DEK is ready and the KMS socket serves (Encrypt can be answered).
 * - `/healthz` the last deep KEK probe (what Status reports as healthz).
 * - `/metrics` Prometheus text format from the injected registry.
 *
 * `?verbose` on the first three lists each check Kubernetes-style (`[+]name ok`,
 * `[-]name failed: reason`). Without it a failing endpoint says `reason withheld`, like
 * kube-apiserver. Status codes: 200 ok, 503 failing, 404 unknown path, 405 other methods.
 *
 * The data comes from a HealthView the composition root implements over the prober and status
 * snapshot; this module only renders it. Nothing here can block on the KMS.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { formatHostPort, isLoopbackHost, parseHostPort } from './http-addr.js';
import { renderChecks } from './http-format.js';
import type { HealthCheck, HealthReport, HealthResult, HealthView } from './checks.js';
import { startLoopMonitor, type LoopLag } from './http-loop.js';

export type { HealthCheck, HealthReport, HealthResult, HealthView } from './checks.js';

export interface HealthServerOptions {
  /** `host:port`; port 0 picks a free one (tests). */
  addr: string;
  metrics: Metrics;
  view: HealthView;
  logger: Logger;
  /** /livez fails when the event loop stalled longer than this in the current window (default 5 s). */
  maxEventLoopLagMs?: number;
}

export interface HealthServer {
  /** The bound `host:port`. */
  address: string;
  close(): Promise<void>;
}

const TEXT = 'text/plain; charset=utf-8';
const PATHS = new Set(['/livez', '/readyz', '/healthz', '/metrics']);

export async function startHealthServer(opts: HealthServerOptions): Promise<HealthServer> {
  const { host, port } = parseHostPort(opts.addr);
  const lag = startLoopMonitor();
  const maxLagMs = opts.maxEventLoopLagMs ?? 5000;
  const server = createServer((req, res) => {
    handle(req, res, opts, lag, maxLagMs).catch((err: unknown) => {
      opts.logger.error({ err }, 'health endpoint failed');
      if (!res.headersSent) send(res, req, 500, TEXT, 'internal error\n');
      else res.destroy();
    });
  });
  // Small, local, unauthenticated: keep slow or idle clients from holding sockets.
  server.requestTimeout = 5000;
  server.headersTimeout = 5000;
  server.keepAliveTimeout = 5000;
  server.maxConnections = 64;
  server.maxHeadersCount = 50;

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port, exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    lag.stop();
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new Error(
      `cannot listen on health address ${opts.addr} (${code}): pick a free port with --health-addr, or "" to disable`,
      {
        cause: err,
      },
    );
  }
  server.on('error', (err) => opts.logger.error({ err }, 'health server error'));
  const bound = server.address() as AddressInfo;
  const address = formatHostPort(bound.address, bound.port);
  if (!isLoopbackHost(host)) {
    opts.logger.warn(
      { address },
      'health/metrics endpoints listen on a non-loopback address; they are unauthenticated',
    );
  }
  opts.logger.info({ address }, 'health endpoints listening');

  let closed: Promise<void> | undefined;
  return {
    address,
    close: () => {
      closed ??= new Promise<void>((resolve) => {
        lag.stop();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  opts: HealthServerOptions,
  lag: LoopLag,
  maxLagMs: number,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://health.invalid');
  const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, '') : url.pathname;
  if (!PATHS.has(path)) return send(res, req, 404, TEXT, 'not found\n');
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return send(res, req, 405, TEXT, 'method not allowed\n');
  }
  if (path === '/metrics') {
    const body = await opts.metrics.registry.metrics();
    return send(res, req, 200, opts.metrics.registry.contentType, body);
  }
  const verbose = url.searchParams.has('verbose');
  const endpoint = path.slice(1);
  const checks =
    endpoint === 'livez'
      ? liveChecks(opts.view, lag, maxLagMs)
      : endpoint === 'readyz'
        ? readyChecks(opts.view)
        : healthChecks(opts.view);
  const { ok, body } = renderChecks(checks, { verbose, endpoint });
  send(res, req, ok ? 200 : 503, TEXT, body);
}

function liveChecks(view: HealthView, lag: LoopLag, maxLagMs: number): HealthCheck[] {
  const worst = lag.maxLagMs();
  return [
    { name: 'ping', ok: true },
    safe('process', () => view.live()),
    worst > maxLagMs
      ? {
          name: 'event-loop',
          ok: false,
          reason: `event loop blocked for ${Math.round(worst)} ms (limit ${maxLagMs} ms)`,
        }
      : { name: 'event-loop', ok: true },
  ];
}

function readyChecks(view: HealthView): HealthCheck[] {
  return [safe('ready', () => view.ready())];
}

function healthChecks(view: HealthView): HealthCheck[] {
  let report: HealthReport;
  try {
    report = view.health();
  } catch {
    return [{ name: 'health', ok: false, reason: 'health view failed (see logs)' }];
  }
  const checks = [...report.checks];
  // A report that says "not ok" without a failing check must still fail.
  if (!report.ok && checks.every((c) => c.ok)) checks.push({ name: 'health', ok: false, reason: 'not ok' });
  if (checks.length === 0) checks.push({ name: 'health', ok: report.ok });
  return checks;
}

/** A view that throws counts as failing, with a fixed reason (its message could be anything). */
function safe(name: string, fn: () => HealthResult): HealthCheck {
  try {
    const r = fn();
    return { name, ok: r.ok === true, reason: r.reason };
  } catch {
    return { name, ok: false, reason: `${name} check failed (see logs)` };
  }
}

function send(
  res: ServerResponse,
  req: IncomingMessage,
  status: number,
  contentType: string,
  body: string,
): void {
  res.statusCode = status;
  res.setHeader('Content-Type', contentType);
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(req.method === 'HEAD' ? undefined : body);
}
