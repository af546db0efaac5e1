import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubeErrorFrom, loadKubeConfig, parseRetryAfter } from '../../../../src/cli/reencrypt/kube.js';
import { ConfigError } from '../../../../src/errors.js';

describe('parseRetryAfter', () => {
  test('seconds, an HTTP date, or nothing', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter('0')).toBe(0);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 00:00:05 GMT', now)).toBe(0);
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
  });
});

describe('kubeErrorFrom', () => {
  const req = { method: 'PUT' as const, path: '/api/v1/namespaces/a/secrets/b' };

  test('a Status: reason, message, Retry-After', () => {
    const e = kubeErrorFrom(
      429,
      { 'retry-after': '2' },
      JSON.stringify({ kind: 'Status', reason: 'TooManyRequests', message: 'slow' }),
      req,
    );
    expect([e.status, e.reason, e.message, e.retryAfterMs]).toEqual([429, 'TooManyRequests', 'slow', 2000]);
  });

  test('Invalid keeps field names and cause types, never the message (it can quote values)', () => {
    const body = {
      kind: 'Status',
      reason: 'Invalid',
      message: 'Secret "b" is invalid: data[k]: Invalid value: "hunter2"',
      details: {
        causes: [{ field: 'data[k]', reason: 'FieldValueInvalid', message: 'Invalid value: "hunter2"' }],
      },
    };
    const e = kubeErrorFrom(422, {}, JSON.stringify(body), req);
    expect(e.message).toBe('rejected as invalid (data[k]: FieldValueInvalid)');
    expect(e.message).not.toContain('hunter2');
  });

  test('410 carries the fresh continue token; a body that is not a Status still gives a reason', () => {
    expect(
      kubeErrorFrom(
        410,
        {},
        JSON.stringify({ kind: 'Status', reason: 'Expired', metadata: { continue: 'next' } }),
        req,
      ).continueToken,
    ).toBe('next');
    const e = kubeErrorFrom(503, {}, '<html>bad gateway</html>', req);
    expect([e.reason, e.message]).toEqual(['ServiceUnavailable', 'PUT /api/v1/namespaces/a/secrets/b']);
  });
});

describe('loadKubeConfig', () => {
  let dir: string;
  const saved = { ...process.env };
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'kkp-kc-'))));
  afterEach(() => {
    process.env = { ...saved };
    rmSync(dir, { recursive: true, force: true });
  });

  test('no kubeconfig anywhere and not in a pod: a ConfigError that says what to give', () => {
    delete process.env.KUBECONFIG;
    delete process.env.KUBERNETES_SERVICE_HOST;
    process.env.HOME = dir;
    expect(() => loadKubeConfig()).toThrow(/give --kubeconfig FILE, set KUBECONFIG, or run in a pod/);
  });

  test('an unreadable file or an unknown context name the flag', () => {
    expect(() => loadKubeConfig(join(dir, 'missing'))).toThrow(ConfigError);
    const f = join(dir, 'kc');
    writeFileSync(
      f,
      'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\n' +
        'users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n',
    );
    expect(loadKubeConfig(f).getCurrentCluster()?.server).toBe('https://127.0.0.1:1');
    expect(() => loadKubeConfig(f, 'nope')).toThrow(/--context.*no context "nope"/);
    process.env.KUBECONFIG = f;
    expect(loadKubeConfig().getCurrentContext()).toBe('x');
  });
});
