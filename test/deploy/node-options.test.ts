/**
 * The runtime settings the plugin ships with (SHIPPED_ENV: NODE_OPTIONS and MALLOC_ARENA_MAX) are
 * the same in every shipped manifest, and Node accepts the V8 flags in NODE_OPTIONS (only
 * allow-listed V8 flags are).
 */
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { SHIPPED_ENV, SHIPPED_NODE_OPTIONS } from '../../src/cli/render/node-options.js';

const root = process.cwd();
const read = (f: string): string => readFileSync(join(root, f), 'utf8');
type Env = Array<{ name: string; value: string }>;

describe('shipped runtime settings', () => {
  it('NODE_OPTIONS is set, and Node starts with it and applies its heap limit', () => {
    expect(SHIPPED_NODE_OPTIONS).toMatch(/^--[a-z-]+=\d+( --[a-z-]+=\d+)*$/);
    const r = spawnSync(
      process.execPath,
      ['-e', 'process.stdout.write(String(require("v8").getHeapStatistics().heap_size_limit))'],
      { env: { ...process.env, NODE_OPTIONS: SHIPPED_NODE_OPTIONS }, encoding: 'utf8' },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const oldSpaceMiB = Number(/--max-old-space-size=(\d+)/.exec(SHIPPED_NODE_OPTIONS)?.[1]);
    // heap_size_limit = old space + young generation (a few MiB with a 1 MiB semi-space).
    expect(Number(r.stdout) / 2 ** 20).toBeGreaterThanOrEqual(oldSpaceMiB);
    expect(Number(r.stdout) / 2 ** 20).toBeLessThan(oldSpaceMiB + 16);
  });

  it('names NODE_OPTIONS and MALLOC_ARENA_MAX once each', () => {
    expect(SHIPPED_ENV.map((e) => e.name)).toEqual(['NODE_OPTIONS', 'MALLOC_ARENA_MAX']);
    expect(SHIPPED_ENV[0].value).toBe(SHIPPED_NODE_OPTIONS);
    expect(SHIPPED_ENV[1].value).toMatch(/^[1-9]\d*$/);
  });

  it('the Dockerfile sets exactly them', () => {
    const df = read('Dockerfile');
    for (const e of SHIPPED_ENV) {
      const m = new RegExp(`^ENV ${e.name}="([^"]*)"$`, 'm').exec(df);
      expect(m?.[1]).toBe(e.value);
    }
  });

  it.each(['deploy/static-pod/k8s-kms-plugin.yaml', 'deploy/static-pod/k8s-kms-plugin-v2beta1.yaml'])(
    '%s passes them to the container',
    (file) => {
      const pod = parse(read(file)) as { spec: { containers: Array<{ env?: Env }> } };
      expect(pod.spec.containers[0].env).toEqual(SHIPPED_ENV);
    },
  );

  it('the sidecar example passes them to every plugin container', () => {
    const docs = parseAllDocuments(read('deploy/sidecar/kube-apiserver-sidecar.yaml')).map(
      (d) => d.toJS() as unknown,
    );
    const text = JSON.stringify(docs);
    const envs = [...text.matchAll(/"env":(\[[^\]]*\])/g)].map((m) => JSON.parse(m[1]) as Env);
    const plugin = envs.filter((e) => e.some((v) => v.name === 'NODE_OPTIONS'));
    expect(plugin.length).toBeGreaterThan(0);
    for (const env of plugin) expect(env).toEqual(SHIPPED_ENV);
  });

  it('the systemd unit sets them', () => {
    const lines = read('deploy/systemd/k8s-kms-plugin.service').split('\n');
    for (const e of SHIPPED_ENV) expect(lines).toContain(`Environment=${e.name}=${e.value}`);
  });
});
