/**
 * The runtime settings the plugin ships with (SHIPPED_ENV: NODE_OPTIONS and MALLOC_ARENA_MAX) are
 * the same in every shipped manifest, and Node accepts the V8 flags in NODE_OPTIONS (only
 * allow-listed V8 flags are); `serve` sets the V8 flags Node does not take in NODE_OPTIONS
 * (SERVE_V8_FLAGS) on itself, unless the node command line sets them.
 */
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { spawn } from 'node:child_process';
import {
  SERVE_V8_FLAGS,
  SHIPPED_ENV,
  SHIPPED_NODE_OPTIONS,
  applyServeV8Flags,
} from '../../src/cli/render/node-options.js';
import { CLI, requireBuild, runCli, tempDir } from '../support/plugin-process.js';

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

describe('V8 flags serve sets on itself (SERVE_V8_FLAGS)', () => {
  it('sets every flag when the node command line sets none of them, in order', () => {
    const set: string[] = [];
    expect(
      applyServeV8Flags(['--max-old-space-size=256', '--enable-source-maps'], (f) => set.push(f)),
    ).toEqual([...SERVE_V8_FLAGS]);
    expect(set).toEqual([...SERVE_V8_FLAGS]);
    expect(SERVE_V8_FLAGS).toContain('--heap-growing-percent=100');
  });

  it.each(['--heap-growing-percent=0', '--heap_growing_percent=300', '--heap-growing-percent'])(
    'leaves a flag the node command line already gives (%s)',
    (given) => {
      const set: string[] = [];
      expect(applyServeV8Flags([given], (f) => set.push(f))).toEqual([]);
      expect(set).toEqual([]);
    },
  );

  it('V8 knows every flag (it warns about an unknown one)', () => {
    const run = (flag: string) =>
      spawnSync(process.execPath, ['-e', `require("v8").setFlagsFromString(${JSON.stringify(flag)})`], {
        encoding: 'utf8',
      });
    for (const flag of SERVE_V8_FLAGS) {
      const r = run(flag);
      expect(r.status).toBe(0);
      expect(r.stderr).toBe('');
    }
    // The check above can fail: V8 reports a flag it does not know.
    expect(run('--heap-growing-percentage=100').stderr).toMatch(/unknown flag|unrecognized/i);
  });

  async function serveV8Flags(nodeArgs: string[]): Promise<unknown> {
    requireBuild();
    const dir = tempDir();
    try {
      const keyFile = join(dir.path, 'kek.json');
      expect((await runCli(['keygen', '--out', keyFile])).code).toBe(0);
      const args = [...nodeArgs, CLI, 'serve', '--provider', 'local', '--local-key-file', keyFile];
      args.push(
        '--listen',
        `unix://${join(dir.path, 'kms.sock')}`,
        '--health-addr',
        '',
        '--log-level',
        'debug',
      );
      const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
      proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise((r) => proc.on('exit', r));
      const deadline = Date.now() + 15_000;
      while (!/"msg":"listening"/.test(out) && proc.exitCode === null && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 25));
      }
      proc.kill('SIGTERM');
      await exited;
      const line = out.split('\n').find((l) => l.includes('SERVE_V8_FLAGS'));
      expect(line).toBeDefined();
      return (JSON.parse(line!) as { v8Flags: unknown }).v8Flags;
    } finally {
      dir.cleanup();
    }
  }

  it('a real serve sets them, and a flag on the node command line wins', async () => {
    expect(await serveV8Flags([])).toEqual([...SERVE_V8_FLAGS]);
    expect(await serveV8Flags(['--heap-growing-percent=0'])).toEqual([]);
  }, 40_000);
});
