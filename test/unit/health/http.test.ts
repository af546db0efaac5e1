import { request } from 'node:http';
import { createConnection } from 'node:net';
import { networkInterfaces } from 'node:os';
import { afterEach, describe, expect, it } from '@jest/globals';
import {
  startHealthServer,
  type HealthCheck,
  type HealthResult,
  type HealthServer,
  type HealthView,
} from '../../../src/health/http.js';
import { MAX_REASON_CHARS } from '../../../src/health/http-format.js';
import { parseHostPort } from '../../../src/health/http-addr.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { RemoteCaller } from '../../../src/kek/remote.js';
import { PluginError, UnavailableError } from '../../../src/errors.js';
import { loadConfig } from '../../../src/config/load.js';

/** A HealthView whose answers the test flips, like the plugin's would under a failing provider. */
class FakeView implements HealthView {
  liveResult: HealthResult = { ok: true };
  readyResult: HealthResult = { ok: true };
  checks: HealthCheck[] = [{ name: 'kek', ok: true, ageSeconds: 3 }];
  calls = { live: 0, ready: 0, health: 0 };
  throwOn?: 'live' | 'ready' | 'health';

  live(): HealthResult {
    this.calls.live += 1;
    if (this.throwOn === 'live') throw new Error('boom secret-live');
    return this.liveResult;
  }
  ready(): HealthResult {
    this.calls.ready += 1;
    if (this.throwOn === 'ready') throw new Error('boom secret-ready');
    return this.readyResult;
  }
  health() {
    this.calls.health += 1;
    if (this.throwOn === 'health') throw new Error('boom secret-health');
    return { ok: this.checks.every((c) => c.ok), checks: this.checks };
  }
}

interface Reply {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

function call(address: string, path: string, method = 'GET'): Promise<Reply> {
  const { host, port } = parseHostPort(address);
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, method, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString('utf8'),
          headers: res.headers,
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

let servers: HealthServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function start(
  view: HealthView,
  metrics = new Metrics({ processMetrics: false }),
  extra: { maxEventLoopLagMs?: number } = {},
) {
  const s = await startHealthServer({ addr: '127.0.0.1:0', metrics, view, logger: silentLogger(), ...extra });
  servers.push(s);
  return { server: s, metrics };
}

describe('health endpoints', () => {
  it('all three say ok (200, body "ok") when the view is healthy', async () => {
    const view = new FakeView();
    const { server } = await start(view);
    for (const path of ['/livez', '/readyz', '/healthz']) {
      const r = await call(server.address, path);
      expect([path, r.status, r.body]).toEqual([path, 200, 'ok\n']);
      expect(r.headers['content-type']).toMatch(/^text\/plain/);
      expect(r.headers['cache-control']).toBe('no-store');
    }
    expect(view.calls).toEqual({ live: 1, ready: 1, health: 1 });
  });

  it('under a failing provider: livez stays 200, readyz follows the DEK, healthz fails with the reason only in verbose', async () => {
    const view = new FakeView();
    // The provider's probe fails, but a write DEK is still cached: the plugin is alive and ready, not healthy.
    view.checks = [
      { name: 'dek', ok: true, ageSeconds: 10 },
      { name: 'kek', ok: false, reason: 'last probe failed: unavailable', ageSeconds: 301 },
    ];
    const { server } = await start(view);
    expect((await call(server.address, '/livez')).status).toBe(200);
    expect((await call(server.address, '/readyz')).status).toBe(200);

    const plain = await call(server.address, '/healthz');
    expect(plain.status).toBe(503);
    expect(plain.body).toBe('[+]dek ok\n[-]kek failed: reason withheld\nhealthz check failed\n');

    const verbose = await call(server.address, '/healthz?verbose');
    expect(verbose.status).toBe(503);
    expect(verbose.body).toBe(
      '[+]dek ok (10s ago)\n[-]kek failed: last probe failed: unavailable (301s ago)\nhealthz check failed\n',
    );

    // The DEK goes away too (never primed / KEK disabled): readyz fails, livez still does not.
    view.readyResult = { ok: false, reason: 'no write DEK yet' };
    const ready = await call(server.address, '/readyz?verbose');
    expect(ready.status).toBe(503);
    expect(ready.body).toContain('[-]ready failed: no write DEK yet');
    expect((await call(server.address, '/livez')).status).toBe(200);

    // Recovery.
    view.checks = [{ name: 'kek', ok: true }];
    view.readyResult = { ok: true };
    expect((await call(server.address, '/healthz')).status).toBe(200);
    expect((await call(server.address, '/readyz')).status).toBe(200);
  });

  it('verbose success lists every check and says passed', async () => {
    const view = new FakeView();
    view.checks = [
      { name: 'kek', ok: true, ageSeconds: 12.4 },
      { name: 'dek', ok: true },
    ];
    const { server } = await start(view);
    const r = await call(server.address, '/healthz?verbose=1');
    expect(r.status).toBe(200);
    expect(r.body).toBe('[+]kek ok (12s ago)\n[+]dek ok\nhealthz check passed\n');
    const live = await call(server.address, '/livez?verbose');
    expect(live.body).toBe('[+]ping ok\n[+]process ok\n[+]event-loop ok\nlivez check passed\n');
  });

  it('a report with ok=false but no failing check still fails', async () => {
    const view = new FakeView();
    view.health = () => ({ ok: false, checks: [{ name: 'kek', ok: true }] });
    const { server } = await start(view);
    expect((await call(server.address, '/healthz')).status).toBe(503);
  });

  it('livez fails when the view says the process is broken, and when the event loop stalls', async () => {
    const view = new FakeView();
    const { server } = await start(view, undefined, { maxEventLoopLagMs: 100 });
    view.liveResult = { ok: false, reason: 'shutting down' };
    const r = await call(server.address, '/livez?verbose');
    expect(r.status).toBe(503);
    expect(r.body).toContain('[-]process failed: shutting down');
    view.liveResult = { ok: true };
    expect((await call(server.address, '/livez')).status).toBe(200);

    // Let the monitor take its first samples, then block the loop like a runaway synchronous task.
    await new Promise((r) => setTimeout(r, 80));
    const until = Date.now() + 400;
    while (Date.now() < until) {
      // busy-wait
    }
    await new Promise((r) => setTimeout(r, 60));
    const stalled = await call(server.address, '/livez?verbose');
    expect(stalled.status).toBe(503);
    expect(stalled.body).toMatch(/\[-\]event-loop failed: event loop blocked for \d+ ms \(limit 100 ms\)/);
  });

  it('a throwing view fails the endpoint without leaking the exception text', async () => {
    const view = new FakeView();
    const { server } = await start(view);
    for (const [what, path] of [
      ['live', '/livez?verbose'],
      ['ready', '/readyz?verbose'],
      ['health', '/healthz?verbose'],
    ] as const) {
      view.throwOn = what;
      const r = await call(server.address, path);
      expect(r.status).toBe(503);
      expect(r.body).not.toContain('secret');
      expect(r.body).toContain('(see logs)');
    }
  });

  it('reasons are one bounded line of printable text', async () => {
    const view = new FakeView();
    view.checks = [{ name: 'kek\nbad name', ok: false, reason: `line1\nline2\u0000${'x'.repeat(1000)}` }];
    const { server } = await start(view);
    const r = await call(server.address, '/healthz?verbose');
    const lines = r.body.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0].startsWith('[-]kek_bad_name failed: line1 line2 x')).toBe(true);
    expect(lines[0].length).toBeLessThanOrEqual('[-]kek_bad_name failed: '.length + MAX_REASON_CHARS);
    // eslint-disable-next-line no-control-regex
    expect(lines[0]).not.toMatch(/[\u0000-\u001f]/);
  });
});

describe('methods and paths', () => {
  it('HEAD gets the status and headers without a body; other methods get 405 with Allow', async () => {
    const view = new FakeView();
    const { server } = await start(view);
    const head = await call(server.address, '/readyz', 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect(head.headers['content-length']).toBe('3');
    view.readyResult = { ok: false };
    expect((await call(server.address, '/readyz', 'HEAD')).status).toBe(503);

    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      for (const path of ['/livez', '/metrics']) {
        const r = await call(server.address, path, method);
        expect([method, path, r.status, r.headers.allow]).toEqual([method, path, 405, 'GET, HEAD']);
      }
    }
  });

  it('unknown paths are 404 (also for other methods); a trailing slash is tolerated', async () => {
    const { server } = await start(new FakeView());
    for (const path of ['/', '/healthz/kek', '/debug/pprof', '/metrics.json', '/%2e%2e/etc/passwd']) {
      expect([path, (await call(server.address, path)).status]).toEqual([path, 404]);
    }
    expect((await call(server.address, '/nope', 'POST')).status).toBe(404);
    expect((await call(server.address, '/healthz/')).status).toBe(200);
  });
});

describe('/metrics', () => {
  it('serves the registry in Prometheus text format with the design §7 families', async () => {
    const metrics = new Metrics({ processMetrics: true });
    metrics.rpcTotal.inc({ method: 'Status', code: 'OK' });
    metrics.healthy.set(1);
    const { server } = await start(new FakeView(), metrics);
    const r = await call(server.address, '/metrics');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(r.body).toContain('kms_plugin_rpc_total{method="Status",code="OK"} 1');
    expect(r.body).toMatch(/^kms_plugin_healthy 1$/m);
    for (const family of [
      'kms_plugin_rpc_total',
      'kms_plugin_rpc_duration_seconds',
      'kms_plugin_remote_calls_total',
      'kms_plugin_remote_call_duration_seconds',
      'kms_plugin_dek_cache_events_total',
      'kms_plugin_dek_cache_size',
      'kms_plugin_key_id_info',
      'kms_plugin_kek_rotations_total',
      'kms_plugin_kek_state',
      'kms_plugin_last_successful_probe_timestamp_seconds',
      'kms_plugin_healthy',
      'kms_plugin_ready',
      // Node process metrics, same prefix
      'kms_plugin_process_cpu_seconds_total',
      'kms_plugin_nodejs_eventloop_lag_seconds',
    ]) {
      expect([family, r.body.includes(`# TYPE ${family} `)]).toEqual([family, true]);
    }
    // Every family carries the prefix.
    const names = [...r.body.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]);
    expect(names.length).toBeGreaterThan(20);
    expect(names.filter((n) => !n.startsWith('kms_plugin_'))).toEqual([]);
  });

  it('label values stay bounded and never carry raw error text under a failing provider', async () => {
    const metrics = new Metrics({ processMetrics: false });
    const secretText =
      'AccessDenied: token s.SECRETTOKEN1234 not allowed for arn:aws:kms:eu-west-1:111122223333:key/abc';
    const caller = new RemoteCaller({
      provider: 'aws',
      metrics,
      classify: (err) => new PluginError('permission_denied', 'permission denied', { cause: err }),
      retry: { maxAttempts: 2, baseBackoffMs: 1, maxBackoffMs: 2 },
    });
    const failing = () => Promise.reject(new Error(secretText));
    const transient = () => Promise.reject(new UnavailableError(secretText));
    for (let i = 0; i < 3; i += 1) {
      await expect(caller.call('Decrypt', AbortSignal.timeout(2000), failing)).rejects.toBeInstanceOf(
        PluginError,
      );
      await expect(caller.call('Encrypt', AbortSignal.timeout(2000), transient)).rejects.toBeInstanceOf(
        PluginError,
      );
    }
    metrics.setKekState('aws', 'write', 'pending_deletion', ['enabled', 'disabled', 'pending_deletion']);
    const view = new FakeView();
    view.checks = [{ name: 'kek', ok: false, reason: 'probe failed: permission_denied' }];
    const { server } = await start(view, metrics);
    const r = await call(server.address, '/metrics');
    expect(r.body).toContain(
      'kms_plugin_remote_calls_total{provider="aws",operation="Decrypt",outcome="permission_denied"} 3',
    );
    expect(r.body).toContain(
      'kms_plugin_remote_calls_total{provider="aws",operation="Encrypt",outcome="unavailable"} 3',
    );
    expect(r.body).toContain('kms_plugin_kek_state{provider="aws",role="write",state="pending_deletion"} 1');

    const values = [...r.body.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => ({
      label: m[1],
      value: m[2],
    }));
    expect(values.length).toBeGreaterThan(10);
    for (const { label, value } of values) {
      expect([label, value.length <= 64]).toEqual([label, true]);
      // Bounded vocabularies: identifiers, not sentences.
      if (label !== 'le' && label !== 'key_id')
        expect([label, value]).toEqual([label, expect.stringMatching(/^[A-Za-z0-9_.+-]*$/)]);
    }
    for (const fragment of ['SECRETTOKEN', 'AccessDenied', 'arn:aws', 'not allowed'])
      expect(r.body).not.toContain(fragment);
  });

  it('a failing registry gives 500, not a crash', async () => {
    const metrics = new Metrics({ processMetrics: false });
    metrics.registry.metrics = () => Promise.reject(new Error('collector failed'));
    const { server } = await start(new FakeView(), metrics);
    const r = await call(server.address, '/metrics');
    expect(r.status).toBe(500);
    expect(r.body).toBe('internal error\n');
    expect((await call(server.address, '/livez')).status).toBe(200);
  });
});

describe('binding', () => {
  it('defaults to 127.0.0.1:8086 in the config, and binds loopback only', async () => {
    expect(loadConfig({ env: {}, flags: { 'local-key-file': '/k.json' } }).healthAddr).toBe('127.0.0.1:8086');
    const { server } = await start(new FakeView());
    expect(server.address).toMatch(/^127\.0\.0\.1:\d+$/);
    const { port } = parseHostPort(server.address);
    const external = Object.values(networkInterfaces())
      .flat()
      .find((i) => i && i.family === 'IPv4' && !i.internal);
    if (external) {
      const err = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
        const sock = createConnection({ host: external.address, port }, () => {
          sock.destroy();
          resolve(undefined);
        });
        sock.on('error', resolve);
      });
      expect(err?.code).toBe('ECONNREFUSED');
    }
  });

  it('a port in use is a clear error', async () => {
    const { server } = await start(new FakeView());
    await expect(
      startHealthServer({
        addr: server.address,
        metrics: new Metrics({ processMetrics: false }),
        view: new FakeView(),
        logger: silentLogger(),
      }),
    ).rejects.toThrow(/cannot listen on health address .* \(EADDRINUSE\)/);
  });

  it('close() stops serving and is idempotent', async () => {
    const s = await startHealthServer({
      addr: '127.0.0.1:0',
      metrics: new Metrics({ processMetrics: false }),
      view: new FakeView(),
      logger: silentLogger(),
    });
    const addr = s.address;
    await Promise.all([s.close(), s.close()]);
    await expect(call(addr, '/livez')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
