/**
 * deploy/grafana/k8s-kms-plugin.json: every query uses metrics a real plugin exports. A plugin
 * process (local provider) is started, driven through Encrypt/Decrypt, and its /metrics scraped;
 * each kms_plugin_* name in a query must be a metric there (histogram series by their
 * _bucket/_sum/_count suffix), each `by (...)`/label matcher must be one of its labels, and the
 * panels the dashboard promises are present.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { KmsClient } from '../../src/server/client.js';
import { CLI, requireBuild, spawnPlugin, tempDir, type SpawnedPlugin } from '../support/plugin-process.js';

interface Panel {
  title: string;
  type: string;
  targets?: Array<{ expr: string }>;
}
const dashboard = JSON.parse(readFileSync('deploy/grafana/k8s-kms-plugin.json', 'utf8')) as {
  panels: Panel[];
  templating: { list: Array<{ type: string; query?: unknown }> };
  annotations: { list: Array<{ expr?: string }> };
};
const exprs: string[] = [
  ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
  ...dashboard.templating.list
    .filter((v) => v.type === 'query')
    .map((v) => v.query)
    .filter((q): q is string => typeof q === 'string'),
  ...dashboard.annotations.list.map((a) => a.expr).filter((e): e is string => typeof e === 'string'),
];

/** name → { type, labels seen on its samples } from Prometheus text format. */
function parseExposition(text: string): Map<string, { type: string; labels: Set<string> }> {
  const out = new Map<string, { type: string; labels: Set<string> }>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t) out.set(t[1], { type: t[2], labels: new Set() });
  }
  for (const line of text.split('\n')) {
    const s = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? /.exec(line);
    if (!s || line.startsWith('#')) continue;
    const base = out.has(s[1]) ? s[1] : s[1].replace(/_(bucket|sum|count)$/, '');
    for (const m of (s[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) out.get(base)?.labels.add(m[1]);
  }
  return out;
}

/** The metric, label matchers and by/without labels a PromQL expression uses (enough for our queries). */
function uses(expr: string): Array<{ metric: string; series: string; labels: string[] }> {
  const found: Array<{ metric: string; series: string; labels: string[] }> = [];
  const grouping = [...expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)].flatMap((m) =>
    m[1]
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
  for (const m of expr.matchAll(/\b(kms_plugin_[a-z0-9_]+)(\{[^}]*\})?/g)) {
    const matchers = [...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map(
      (x) => x[1],
    );
    found.push({
      metric: m[1].replace(/_(bucket|sum|count)$/, ''),
      series: m[1],
      labels: [...matchers, ...grouping],
    });
  }
  return found;
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });
}

const dir = tempDir('kkp-grafana-');
let plugin: SpawnedPlugin | undefined;
let exposition = '';

beforeAll(async () => {
  requireBuild();
  const keyFile = join(dir.path, 'kek.json');
  execFileSync(process.execPath, [CLI, 'keygen', '--out', keyFile]);
  const sock = join(dir.path, 'p.sock');
  const port = await freePort();
  plugin = await spawnPlugin({
    endpoint: `unix://${sock}`,
    args: [
      '--provider',
      'local',
      '--local-key-file',
      keyFile,
      '--listen',
      `unix://${sock}`,
      '--health-addr',
      `127.0.0.1:${port}`,
    ],
  });
  const c = new KmsClient(plugin.endpoint);
  for (let i = 0; i < 5; i++) {
    const e = await c.encrypt({ plaintext: randomBytes(32), uid: randomUUID() });
    await c.decrypt({
      ciphertext: e.ciphertext,
      key_id: e.key_id,
      annotations: e.annotations,
      uid: randomUUID(),
    });
  }
  c.close();
  // The first probe has run once Status answered ok; scrape.
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(res.status).toBe(200);
  exposition = await res.text();
}, 60_000);

afterAll(async () => {
  await plugin?.stop();
  dir.cleanup();
});

describe('grafana dashboard', () => {
  it('has the promised panels', () => {
    const titles = dashboard.panels.map((p) => p.title.toLowerCase());
    for (const want of [
      'rpc rate',
      'rpc latency',
      'remote kms calls per hour',
      'key_id changes',
      'kek state',
      'dek cache',
      'seconds since the last good kek probe',
    ])
      expect([want, titles.some((t) => t.includes(want))]).toEqual([want, true]);
    expect(exprs.length).toBeGreaterThan(15);
  });

  it('every query uses metrics and labels the running plugin exports', () => {
    const metrics = parseExposition(exposition);
    expect(metrics.size).toBeGreaterThan(20);
    const problems: string[] = [];
    for (const expr of exprs) {
      const used = uses(expr);
      if (used.length === 0) problems.push(`${expr}: uses no kms_plugin_ metric`);
      for (const u of used) {
        const m = metrics.get(u.metric);
        if (!m) {
          problems.push(`${expr}: ${u.metric} is not exported`);
          continue;
        }
        if (u.series !== u.metric && m.type !== 'histogram')
          problems.push(`${expr}: ${u.series} needs a histogram; ${u.metric} is a ${m.type}`);
        if (u.series.endsWith('_bucket') && !/\ble\b/.test(expr))
          problems.push(`${expr}: a _bucket query must aggregate by le`);
        // Labels: the plugin's own (from samples where there are any) plus Prometheus' target labels.
        const allowed = new Set([...m.labels, 'le', 'instance', 'job']);
        for (const l of u.labels)
          if (m.labels.size > 0 && !allowed.has(l)) problems.push(`${expr}: ${u.metric} has no label ${l}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('the checker itself catches a wrong name, a wrong label and a bucket of a counter', () => {
    const metrics = parseExposition(exposition);
    const check = (expr: string) =>
      uses(expr).filter((u) => {
        const m = metrics.get(u.metric);
        return (
          !m ||
          (u.series !== u.metric && m.type !== 'histogram') ||
          u.labels.some((l) => m.labels.size > 0 && ![...m.labels, 'le', 'instance', 'job'].includes(l))
        );
      });
    expect(check('rate(kms_plugin_rpc_totals[5m])')).toHaveLength(1);
    expect(check('sum by (verb) (rate(kms_plugin_rpc_total[5m]))')).toHaveLength(1);
    expect(check('rate(kms_plugin_rpc_total_bucket[5m])')).toHaveLength(1);
    expect(check('sum by (method) (rate(kms_plugin_rpc_total[5m]))')).toHaveLength(0);
  });
});
