/**
 * reencrypt through @kubernetes/client-node against the fake kube-apiserver
 * (test/fakes/kube-apiserver): both methods, conflicts / gone, 429 with Retry-After, expired
 * continue tokens, the rate limit (counted by the fake), and the key-id gate with the write window.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeKubeApiserver } from '../fakes/kube-apiserver/server.js';
import { KubeClient, loadKubeConfig } from '../../src/cli/reencrypt/kube.js';
import { MetricsReplica } from '../../src/cli/reencrypt/gate.js';
import { formatSummary, runReencrypt, type ReencryptOptions } from '../../src/cli/reencrypt/run.js';
import type { ProgressEvent } from '../../src/cli/reencrypt/engine.js';

let dir: string;
let api: FakeKubeApiserver;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kkp-reenc-'));
});
afterEach(async () => {
  await api?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function start(opts: ConstructorParameters<typeof FakeKubeApiserver>[0] = {}): Promise<KubeClient> {
  api = new FakeKubeApiserver(opts);
  await api.listen();
  const file = join(dir, 'kubeconfig');
  writeFileSync(file, api.kubeconfig());
  return new KubeClient(loadKubeConfig(file));
}

function options(
  kube: KubeClient,
  over: Partial<ReencryptOptions> = {},
): ReencryptOptions & { lines: string[]; ev: ProgressEvent[] } {
  const lines: string[] = [];
  const ev: ProgressEvent[] = [];
  return {
    kube,
    names: ['secrets'],
    strict: true,
    method: 'auto',
    writeWindowMs: 0,
    qps: 0,
    concurrency: 4,
    pageSize: 7,
    maxRetries: 3,
    svmPollMs: 20,
    stop: new AbortController().signal,
    log: (l) => lines.push(l),
    events: (e) => ev.push(e),
    lines,
    ev,
    ...over,
  };
}

describe('reencrypt, update method', () => {
  test('rewrites every object exactly once, in pages, keeping every field; counts and progress add up', async () => {
    const kube = await start();
    api.seed('secrets', 40, ['a', 'b', 'kube-system']);
    api.seed('configmaps', 9, ['a']);
    const before = JSON.stringify(
      [...api.store.get('secrets')!.values()].map((o) => ({
        ...o,
        metadata: { ...o.metadata, resourceVersion: 0 },
      })),
    );
    const o = options(kube, { names: ['secrets', 'configmaps'] });
    const s = await runReencrypt(o);
    expect(s.method).toBe('update');
    expect(s.stopped).toBe(false);
    expect(api.writesOf('secrets')).toEqual(new Array(40).fill(1));
    expect(api.writesOf('configmaps')).toEqual(new Array(9).fill(1));
    expect(s.totals).toEqual({ rewritten: 49, conflicts: 0, gone: 0, failed: 0 });
    // No-op: the stored objects are the same but for resourceVersion (unknown fields kept).
    const after = JSON.stringify(
      [...api.store.get('secrets')!.values()].map((o) => ({
        ...o,
        metadata: { ...o.metadata, resourceVersion: 0 },
      })),
    );
    expect(after).toBe(before);
    // Paged: 40 secrets / 7 per page = 6 list pages after the count request.
    const lists = api.requests.filter((r) => r.method === 'GET' && r.path === '/api/v1/secrets');
    expect(lists.filter((r) => r.query.get('limit') === '7')).toHaveLength(6);
    const last = o.ev.filter((e) => e.type === 'progress' && e.resource === 'secrets').pop();
    expect(last).toMatchObject({ done: 40, total: 40 });
    expect(formatSummary(s)).toMatch(/total: 49 rewritten, 0 conflicts/);
  });

  test('409 (modified meanwhile) and 404 (deleted meanwhile) are counted and skipped; other errors fail with a reason', async () => {
    const kube = await start();
    api.seed('secrets', 12, ['a']);
    api.beforeUpdate = (id, key) => {
      const m = api.store.get(id)!;
      if (key === 'a/obj-00002') m.get(key)!.metadata.resourceVersion = api.nextRv(); // someone wrote it
      if (key === 'a/obj-00005') m.delete(key); // deleted
    };
    api.fault = (r) =>
      r.method === 'PUT' && r.path.endsWith('/obj-00007')
        ? {
            status: 422,
            body: {
              kind: 'Status',
              reason: 'Invalid',
              code: 422,
              message: 'data[v]: Invalid value: "c2VjcmV0"',
              details: { causes: [{ field: 'data[v]', reason: 'FieldValueInvalid' }] },
            },
          }
        : undefined;
    const s = await runReencrypt(options(kube));
    expect(s.totals).toEqual({ rewritten: 9, conflicts: 1, gone: 1, failed: 1 });
    const f = s.resources[0].failures['HTTP 422 Invalid'];
    expect(f.count).toBe(1);
    expect(f.examples).toEqual(['a/obj-00007']);
    // An Invalid message can quote values: only field names and cause types are kept.
    expect(f.message).toContain('data[v]: FieldValueInvalid');
    expect(JSON.stringify(s)).not.toContain('c2VjcmV0');
  });

  test('429 with Retry-After is retried after the delay the server asked for', async () => {
    const kube = await start();
    api.seed('secrets', 6, ['a']);
    let throttled = 0;
    let throttledAt = 0;
    api.fault = (r) => {
      if (r.method === 'PUT' && r.path.endsWith('/obj-00003') && throttled < 2) {
        throttled++;
        throttledAt = r.at;
        return {
          status: 429,
          headers: { 'retry-after': '1' },
          body: { kind: 'Status', reason: 'TooManyRequests', code: 429 },
        };
      }
      return undefined;
    };
    const s = await runReencrypt(options(kube, { concurrency: 1 }));
    expect(throttled).toBe(2);
    expect(s.totals).toEqual({ rewritten: 6, conflicts: 0, gone: 0, failed: 0 });
    const retried = api.updates().filter((r) => r.path.endsWith('/obj-00003'));
    expect(retried).toHaveLength(3);
    // The retry came no sooner than Retry-After (1s) after the second 429.
    expect(retried[2].at - throttledAt).toBeGreaterThanOrEqual(950);
  });

  test('429 beyond --retries fails that object with the reason, and the run goes on', async () => {
    const kube = await start();
    api.seed('secrets', 4, ['a']);
    api.fault = (r) =>
      r.method === 'PUT' && r.path.endsWith('/obj-00001')
        ? {
            status: 429,
            headers: { 'retry-after': '0' },
            body: { kind: 'Status', reason: 'TooManyRequests', code: 429, message: 'slow down' },
          }
        : undefined;
    const s = await runReencrypt(options(kube, { maxRetries: 2 }));
    expect(s.totals).toEqual({ rewritten: 3, conflicts: 0, gone: 0, failed: 1 });
    expect(api.updates().filter((r) => r.path.endsWith('/obj-00001'))).toHaveLength(3);
    expect(formatSummary(s)).toMatch(
      /failed secrets: 1 × HTTP 429 TooManyRequests: slow down \(e\.g\. a\/obj-00001\)/,
    );
  });

  test('an expired continue token: continue with the token the server offers, else relist', async () => {
    for (const offer of [true, false]) {
      const kube = await start();
      api.seed('secrets', 20, ['a']);
      let pages = 0;
      api.fault = (r) => {
        if (r.method === 'GET' && r.query.get('continue') && ++pages === 1) api.expireContinue = { offer };
        return undefined;
      };
      const o = options(kube);
      const s = await runReencrypt(o);
      expect(s.totals.failed).toBe(0);
      const w = api.writesOf('secrets');
      expect(w.every((n) => n >= 1)).toBe(true);
      if (offer) expect(w.every((n) => n === 1)).toBe(true);
      expect(o.lines.join('\n')).toMatch(
        offer ? /continuing with the token the server offered/ : /listing again from the start/,
      );
      await api.close();
    }
  });

  test('the rate limit holds: the fake never sees more than qps × elapsed + burst requests', async () => {
    const kube = await start();
    api.seed('secrets', 50, ['a']);
    const qps = 25;
    const burst = 5;
    const s = await runReencrypt(options(kube, { qps, burst, concurrency: 8, pageSize: 20 }));
    expect(s.totals.rewritten).toBe(50);
    // Requests after discovery go through the limiter: count them in every window from each arrival.
    const limited = api.requests.filter((r) => !/^\/apis?$|^\/api\/v1$|^\/apis\/[^/]+\/[^/]+$/.test(r.path));
    expect(limited.length).toBeGreaterThanOrEqual(53);
    for (let i = 0; i < limited.length; i++) {
      for (let j = i; j < limited.length; j++) {
        const elapsed = (limited[j].at - limited[i].at) / 1000;
        // Slack of 0.5 s: a pause of the shared event loop (client and fake are one process on a
        // loaded box) delivers requests sent on time together. Without the limiter the 53+
        // requests arrive within a fraction of a second and this fails.
        expect(j - i + 1).toBeLessThanOrEqual(Math.floor(qps * (elapsed + 0.5) + burst));
      }
    }
  });

  test('--resource names a resource the cluster does not serve: a clear error', async () => {
    const kube = await start();
    await expect(runReencrypt(options(kube, { names: ['widgets.example.com'] }))).rejects.toThrow(
      /does not serve "widgets.example.com"/,
    );
  });

  test('wildcards expand through discovery (*.apps; subresources never)', async () => {
    const kube = await start();
    api.seed('deployments.apps', 3, ['a']);
    api.seed('statefulsets.apps', 2, ['a']);
    const s = await runReencrypt(options(kube, { names: ['*.apps', 'missing.example.com'], strict: false }));
    expect(s.resources.map((r) => r.resource)).toEqual(['deployments.apps', 'statefulsets.apps']);
    expect(s.notServed).toEqual(['missing.example.com']);
    expect(s.totals.rewritten).toBe(5);
    expect(api.updates().every((r) => r.path.startsWith('/apis/apps/v1/namespaces/a/'))).toBe(true);
  });
});

describe('reencrypt, StorageVersionMigration method', () => {
  test.each(['v1beta1', 'v1alpha1'])(
    '%s: creates one migration per resource and follows it to Succeeded',
    async (version) => {
      const kube = await start({ svmVersions: [version] });
      api.seed('secrets', 10, ['a']);
      api.seed('configmaps', 4, ['a']);
      const o = options(kube, { names: ['secrets', 'configmaps'] });
      const s = await runReencrypt(o);
      expect(s.method).toBe('svm');
      expect(s.svmVersion).toBe(version);
      expect(s.resources.map((r) => r.outcome)).toEqual(['done', 'done']);
      expect(api.migrations.size).toBe(2);
      expect(api.writesOf('secrets')).toEqual(new Array(10).fill(1));
      expect(api.updates()).toHaveLength(0);
      const states = o.ev
        .filter((e) => e.type === 'svm' && e.resource === 'secrets')
        .map((e) => (e as { state: string }).state);
      expect(states).toEqual(expect.arrayContaining(['Running', 'Succeeded']));
      const body = [...api.migrations.values()][0].body as { spec: { resource: Record<string, string> } };
      expect(body.spec.resource).toEqual(
        version === 'v1alpha1'
          ? { group: '', version: 'v1', resource: 'secrets' }
          : { group: '', resource: 'secrets' },
      );
    },
  );

  test('stopped while following: the rerun with the checkpoint follows the same migration, creating none', async () => {
    const kube = await start({ svmVersions: ['v1beta1'], svmStepMs: 400 });
    api.seed('secrets', 5, ['a']);
    const checkpointFile = join(dir, 'cp.json');
    const stop = new AbortController();
    const first = runReencrypt(options(kube, { checkpointFile, stop: stop.signal }));
    while (api.migrations.size === 0) await new Promise((r) => setTimeout(r, 10));
    stop.abort();
    const s1 = await first;
    expect(s1.stopped).toBe(true);
    expect(formatSummary(s1)).toMatch(/rerun the same command \(same --checkpoint/);
    const name = [...api.migrations.keys()][0];
    const o = options(kube, { checkpointFile });
    const s2 = await runReencrypt(o);
    expect(s2.resources[0]).toMatchObject({ outcome: 'done', storageVersionMigration: name });
    expect(api.migrations.size).toBe(1);
    expect(o.lines.join('\n')).toContain(`following StorageVersionMigration ${name} from the checkpoint`);
    expect(api.writesOf('secrets')).toEqual([1, 1, 1, 1, 1]);
  });

  test('a Failed condition fails that resource with the controller message', async () => {
    const kube = await start({
      svmVersions: ['v1beta1'],
      svmFail: { configmaps: 'migration encountered unhandled error' },
    });
    const s = await runReencrypt(options(kube, { names: ['secrets', 'configmaps'] }));
    expect(s.resources.find((r) => r.resource === 'configmaps')?.outcome).toBe('failed');
    expect(s.resources.find((r) => r.resource === 'secrets')?.outcome).toBe('done');
    expect(formatSummary(s)).toMatch(/migration encountered unhandled error/);
  });

  test('no controller acting on the migration: fails after --svm-timeout and says to use --method update', async () => {
    const kube = await start({ svmVersions: ['v1beta1'], svmNoController: true });
    const s = await runReencrypt(options(kube, { svmStartTimeoutMs: 200 }));
    expect(s.totals.failed).toBe(1);
    expect(formatSummary(s)).toMatch(/--method update/);
  });

  test('--method update on a cluster that serves SVM uses updates; --method svm where not served is refused', async () => {
    let kube = await start({ svmVersions: ['v1beta1'] });
    api.seed('secrets', 3, ['a']);
    const s = await runReencrypt(options(kube, { method: 'update' }));
    expect(s.method).toBe('update');
    expect(api.updates()).toHaveLength(3);
    await api.close();
    kube = await start();
    await expect(runReencrypt(options(kube, { method: 'svm' }))).rejects.toThrow(
      /does not serve storagemigration.k8s.io/,
    );
  });
});

describe('reencrypt gate', () => {
  let metrics: Server[] = [];
  afterEach(async () => {
    await Promise.all(metrics.map((m) => new Promise((r) => m.close(r))));
    metrics = [];
  });

  /** A plugin /metrics endpoint reporting `old` until `switchAt` (performance.now()), then `next`. */
  async function fakeMetrics(old: string, next: string, switchAt: () => number): Promise<string> {
    const server = createServer((_req, res) => {
      const switched = performance.now() >= switchAt();
      const id = switched ? next : old;
      const changed = switched ? Date.now() / 1000 - (performance.now() - switchAt()) / 1000 : 1_700_000_000;
      res.end(
        `# HELP kms_plugin_key_id_info x\n# TYPE kms_plugin_key_id_info gauge\nkms_plugin_key_id_info{key_id="${id}",provider="local"} 1\n` +
          `kms_plugin_key_id_last_change_timestamp_seconds ${changed}\n`,
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    metrics.push(server);
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
  }

  test('no write before every replica reports the key_id and the write window has passed', async () => {
    const kube = await start();
    api.seed('secrets', 5, ['a']);
    const t0 = performance.now();
    const urls = [
      await fakeMetrics('old', 'new', () => t0 + 300),
      await fakeMetrics('old', 'new', () => t0 + 900),
    ];
    const o = options(kube, {
      gate: {
        keyId: 'new',
        replicas: urls.map((u) => new MetricsReplica(u)),
        intervalMs: 100,
        timeoutMs: 20_000,
      },
      writeWindowMs: 2000,
      checkpointFile: join(dir, 'cp.json'),
    });
    const s = await runReencrypt(o);
    expect(s.totals.rewritten).toBe(5);
    const firstPut = api.updates()[0].at;
    // The second replica switched at t0+900; the window is 2s from then.
    expect(firstPut - (t0 + 900)).toBeGreaterThanOrEqual(1900);
    const text = o.lines.join('\n');
    expect(text).toMatch(/still waiting for 2\/2: .*reports old/);
    expect(text).toMatch(/waiting out the apiserver write window: 2s after the key switch/);
    // The checkpoint remembers the gate: a rerun does not wait again.
    const cp = JSON.parse(readFileSync(join(dir, 'cp.json'), 'utf8')) as { gate: { keyId: string } };
    expect(cp.gate.keyId).toBe('new');
  });

  test('a replica that never switches: gives up after the timeout and writes nothing', async () => {
    const kube = await start();
    api.seed('secrets', 3, ['a']);
    const url = await fakeMetrics('old', 'new', () => Infinity);
    const s = await runReencrypt(
      options(kube, {
        gate: { keyId: 'new', replicas: [new MetricsReplica(url)], intervalMs: 50, timeoutMs: 300 },
      }),
    );
    expect(s.gateFailed).toMatch(/not every replica reports key_id new after 1s: .*reports old/);
    expect(api.updates()).toHaveLength(0);
    expect(formatSummary(s)).toMatch(/NOT STARTED, nothing was written/);
  });
});
