/**
 * reencrypt throughput: the update method against the fake kube-apiserver (HTTPS, bearer token,
 * through @kubernetes/client-node), no rate limit, at several concurrencies. Prints objects/s and
 * requests/s. The fake answers at once, so this measures the client side (TLS, JSON, the engine);
 * a real apiserver adds its own write latency (encryption, etcd).
 *
 *   npx tsx bench/reencrypt.ts [objects=2000] [concurrency list=1,4,16]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeKubeApiserver } from '../test/fakes/kube-apiserver/server.js';
import { KubeClient, loadKubeConfig } from '../src/cli/reencrypt/kube.js';
import { runReencrypt } from '../src/cli/reencrypt/run.js';

const objects = Number(process.argv[2] ?? 2000);
const concurrencies = (process.argv[3] ?? '1,4,16').split(',').map(Number);
const dir = mkdtempSync(join(tmpdir(), 'kkp-bench-reenc-'));
try {
  for (const concurrency of concurrencies) {
    const api = new FakeKubeApiserver();
    await api.listen();
    api.seed('secrets', objects, ['a', 'b', 'c', 'd']);
    const file = join(dir, 'kubeconfig');
    writeFileSync(file, api.kubeconfig());
    const t0 = performance.now();
    const s = await runReencrypt({
      kube: new KubeClient(loadKubeConfig(file)),
      names: ['secrets'],
      strict: true,
      method: 'update',
      writeWindowMs: 0,
      qps: 0,
      concurrency,
      pageSize: 500,
      maxRetries: 3,
      stop: new AbortController().signal,
      log: () => undefined,
      events: () => undefined,
    });
    const secs = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage();
    process.stdout.write(
      `concurrency ${String(concurrency).padStart(2)}: ${s.totals.rewritten} objects in ${secs.toFixed(2)} s = ` +
        `${(s.totals.rewritten / secs).toFixed(0)} objects/s, ${(api.requests.length / secs).toFixed(0)} requests/s ` +
        `(process CPU so far ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s)\n`,
    );
    await api.close();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
