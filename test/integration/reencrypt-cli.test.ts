/**
 * `k8s-kms-plugin reencrypt` as a process (dist/), against the fake kube-apiserver: resume after
 * SIGKILL midway, clean stop on SIGINT, exit codes, JSON output and progress lines.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeKubeApiserver } from '../fakes/kube-apiserver/server.js';
import { KmsClient } from '../../src/server/client.js';
import { CLI, requireBuild, runCli, spawnPlugin } from '../support/plugin-process.js';

let dir: string;
let api: FakeKubeApiserver;
let kubeconfig: string;

beforeAll(() => requireBuild());
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kkp-reenc-cli-'));
  api = new FakeKubeApiserver();
  await api.listen();
  kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, api.kubeconfig());
});
afterEach(async () => {
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Spawns the CLI; resolves `exited` with the exit code or signal. */
function spawnCli(args: string[]): {
  pid: number;
  kill(sig: NodeJS.Signals): void;
  exited: Promise<number | string | null>;
  out(): { stdout: string; stderr: string };
} {
  const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | string | null>((res) => p.on('exit', (code, sig) => res(code ?? sig)));
  return { pid: p.pid!, kill: (s) => p.kill(s), exited, out: () => ({ stdout, stderr }) };
}

async function until(cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const base = (cp: string): string[] => [
  'reencrypt',
  '--kubeconfig',
  kubeconfig,
  '--resource',
  'secrets,configmaps',
  '--checkpoint',
  cp,
  '--page-size',
  '25',
  '--concurrency',
  '4',
  '--qps',
  '0',
];

test('SIGKILL midway, then a rerun with the checkpoint: every object rewritten, none more than once extra', async () => {
  api.seed('secrets', 200, ['a', 'b', 'c']);
  api.seed('configmaps', 40, ['a']);
  api.updateLatencyMs = 10;
  const cp = join(dir, 'cp.json');
  const run1 = spawnCli(base(cp));
  await until(() => api.updates().length >= 90);
  run1.kill('SIGKILL');
  expect(await run1.exited).toBe('SIGKILL');
  expect(existsSync(cp)).toBe(true);
  const writesAtKill = api.writesOf('secrets').reduce((a, b) => a + b, 0);
  expect(writesAtKill).toBeLessThan(200);

  api.updateLatencyMs = 0;
  const run2 = await runCli(base(cp), {}, 60_000);
  expect(run2.code).toBe(0);
  expect(run2.stderr).toMatch(/resuming from/);
  const w = [...api.writesOf('secrets'), ...api.writesOf('configmaps')];
  expect(w.filter((n) => n === 0)).toHaveLength(0); // none missed
  expect(w.filter((n) => n > 2)).toHaveLength(0); // at most once more
  // Only objects in flight or finished within the last checkpoint interval are rewritten twice.
  expect(w.filter((n) => n === 2).length).toBeLessThan(60);
  expect(run2.stdout).toMatch(/^secrets\s+done/m);
  expect(run2.stdout).toMatch(/^configmaps\s+done\s+40/m);
}, 90_000);

test('SIGINT stops cleanly after the in-flight updates; the rerun finishes with every object rewritten exactly once', async () => {
  api.seed('secrets', 150, ['a', 'b']);
  api.updateLatencyMs = 20;
  const cp = join(dir, 'cp.json');
  const run1 = spawnCli([...base(cp), '--resource', 'secrets']);
  await until(() => api.updates().length >= 40);
  run1.kill('SIGINT');
  expect(await run1.exited).toBe(130);
  const { stdout, stderr } = run1.out();
  expect(stderr).toMatch(/SIGINT: stopping after the in-flight requests/);
  expect(stdout).toMatch(/rerun the same command \(same --checkpoint .*cp\.json\) to resume/);
  // Clean: what the checkpoint counts is exactly what the server wrote; nothing was left in flight.
  const saved = JSON.parse(readFileSync(cp, 'utf8')) as {
    resources: { secrets: { counts: { rewritten: number } } };
  };
  const written = api.writesOf('secrets').reduce((a, b) => a + b, 0);
  expect(api.inflightUpdates).toBe(0);
  expect(saved.resources.secrets.counts.rewritten).toBe(written);
  expect(written).toBeLessThan(150);

  api.updateLatencyMs = 0;
  const run2 = await runCli([...base(cp), '--resource', 'secrets'], {}, 60_000);
  expect(run2.code).toBe(0);
  expect(api.writesOf('secrets')).toEqual(new Array(150).fill(1));
  expect(run2.stdout).toMatch(/total: 150 rewritten/);
  // A third run has nothing left to do.
  const run3 = await runCli([...base(cp), '--resource', 'secrets']);
  expect(run3.code).toBe(0);
  expect(run3.stderr).toMatch(/already done/);
  expect(api.writesOf('secrets')).toEqual(new Array(150).fill(1));
}, 90_000);

test('without a terminal: JSON progress lines every N objects on stderr, --json summary on stdout, exit 1 on failures', async () => {
  api.seed('secrets', 30, ['a']);
  api.fault = (r) =>
    r.method === 'PUT' && r.path.endsWith('/obj-00004')
      ? {
          status: 403,
          body: {
            kind: 'Status',
            reason: 'Forbidden',
            code: 403,
            message: 'secrets "obj-00004" is forbidden',
          },
        }
      : undefined;
  const r = await runCli([
    'reencrypt',
    '--kubeconfig',
    kubeconfig,
    '--resource',
    'secrets',
    '--progress-every',
    '10',
    '--json',
  ]);
  expect(r.code).toBe(1);
  const lines = r.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(lines.filter((l) => l.progress === 'secrets' && !l.done).map((l) => l.count)).toEqual([10, 20, 30]);
  expect(lines.find((l) => l.done)).toMatchObject({ resource: 'secrets', rewritten: 29, failed: 1 });
  const summary = JSON.parse(r.stdout) as {
    totals: Record<string, number>;
    resources: Array<{ failures: object }>;
  };
  expect(summary.totals).toEqual({ rewritten: 29, conflicts: 0, gone: 0, failed: 1 });
  expect(summary.resources[0].failures).toEqual({
    'HTTP 403 Forbidden': {
      count: 1,
      message: 'secrets "obj-00004" is forbidden',
      examples: ['a/obj-00004'],
    },
  });
  // The bearer token never reaches the output.
  expect(r.stdout + r.stderr).not.toContain(api.token);
});

test('bad flags exit 2 naming the flag', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['--resource', 'secrets', '--method', 'sideways'], /--method/],
    [[], /--resource/],
    [['--resource', 'secrets', '--wait-for-key-id', 'k'], /--plugin-metrics URL/],
    [['--resource', 'secrets', '--qps', 'fast'], /--qps/],
    [['--resource', 'secrets', '--write-window', 'soon'], /--write-window/],
    [
      ['--resource', 'secrets', '--verify', '--wait-for-key-id', 'k', '--socket', 'unix:///x.sock'],
      /--etcd-endpoints/,
    ],
  ];
  for (const [args, msg] of cases) {
    const r = await runCli(['reencrypt', '--kubeconfig', kubeconfig, ...args]);
    expect({ args, code: r.code }).toEqual({ args, code: 2 });
    expect(r.stderr).toMatch(msg);
  }
  expect(api.updates()).toHaveLength(0);
});

test('--socket: the gate calls Status on a real plugin; the wrong key_id times out with nothing written', async () => {
  api.seed('secrets', 5, ['a']);
  const key = join(dir, 'key.json');
  expect((await runCli(['keygen', '--out', key])).code).toBe(0);
  const sock = join(dir, 'kms.sock');
  const plugin = await spawnPlugin({
    endpoint: `unix://${sock}`,
    args: ['--local-key-file', key, '--listen', `unix://${sock}`, '--health-addr', ''],
  });
  try {
    const client = new KmsClient(`unix://${sock}`);
    const keyId = (await client.status()).key_id;
    client.close();
    const gate = [
      'reencrypt',
      '--kubeconfig',
      kubeconfig,
      '--resource',
      'secrets',
      '--socket',
      `unix://${sock}`,
    ];
    const wrong = await runCli([
      ...gate,
      '--wait-for-key-id',
      'not-this-one',
      '--gate-timeout',
      '1s',
      '--gate-interval',
      '200ms',
    ]);
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toContain(
      `NOT STARTED, nothing was written: not every replica reports key_id not-this-one after 1s: unix://${sock} reports ${keyId}`,
    );
    expect(api.updates()).toHaveLength(0);
    const right = await runCli(
      [...gate, '--wait-for-key-id', keyId, '--write-window', '1s', '--gate-interval', '200ms'],
      {},
      60_000,
    );
    expect(right.code).toBe(0);
    expect(right.stderr).toMatch(/all 1 replicas report key_id/);
    expect(right.stderr).toMatch(/waiting out the apiserver write window: 1s/);
    expect(api.writesOf('secrets')).toEqual([1, 1, 1, 1, 1]);
  } finally {
    await plugin.stop();
  }
}, 90_000);
