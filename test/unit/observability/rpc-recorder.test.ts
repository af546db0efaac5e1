import { Counter, Histogram, Registry } from 'prom-client';
import { Metrics, RPC_DURATION_BUCKETS, RpcRecorder } from '../../../src/observability/metrics.js';

/** The two RPC metrics as prom-client would expose them with one inc()/observe() per call. */
function reference(calls: Array<[string, string, number]>): Registry {
  const registry = new Registry();
  const total = new Counter({
    name: 'kms_plugin_rpc_total',
    help: 'KMS v2 RPCs served, by method and gRPC status code.',
    labelNames: ['method', 'code'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'kms_plugin_rpc_duration_seconds',
    help: 'KMS v2 RPC latency as seen by the plugin, by method.',
    labelNames: ['method'],
    buckets: [...RPC_DURATION_BUCKETS],
    registers: [registry],
  });
  for (const [method, code, seconds] of calls) {
    total.inc({ method, code });
    duration.observe({ method }, seconds);
  }
  return registry;
}

/** Only the two RPC metrics of an exposition, in a stable order (series order carries no meaning). */
async function rpcLines(registry: Registry): Promise<string> {
  const text = await registry.metrics();
  return text
    .split('\n')
    .filter((l) => l.includes('kms_plugin_rpc_'))
    .sort()
    .join('\n');
}

describe('RpcRecorder', () => {
  // Values on, just under and just over bucket bounds, above the largest bound, and zero.
  const values = [0, 0.00005, 0.0001, 0.00010001, 0.0003, 0.001, 0.0049, 0.005, 0.2, 1, 2.5, 4.9, 5, 7, 120];
  const calls: Array<[string, string, number]> = [];
  for (const [i, v] of values.entries()) {
    calls.push(['decrypt', 'OK', v]);
    calls.push(['encrypt', i % 3 === 0 ? 'Unavailable' : 'OK', v / 2]);
    if (i % 4 === 0) calls.push(['status', 'OK', v]);
    if (i % 5 === 0) calls.push(['decrypt', 'InvalidArgument', v * 3]);
  }

  it('exposes exactly what one inc() and observe() per call expose', async () => {
    const metrics = new Metrics({ processMetrics: false });
    const recorders = new Map(['status', 'encrypt', 'decrypt'].map((m) => [m, metrics.rpcRecorder(m)]));
    for (const [method, code, seconds] of calls) recorders.get(method)?.record(code, seconds);
    const ours = await rpcLines(metrics.registry);
    expect(ours).toContain('kms_plugin_rpc_total{method="decrypt",code="InvalidArgument"} 3');
    expect(ours).toContain('kms_plugin_rpc_duration_seconds_count{method="decrypt"} 18');
    expect(ours).toBe(await rpcLines(reference(calls)));
  });

  it('adds what was recorded between scrapes to what was exposed before', async () => {
    const metrics = new Metrics({ processMetrics: false });
    const rec = metrics.rpcRecorder('decrypt');
    expect(metrics.rpcRecorder('decrypt')).toBe(rec);
    const half = Math.floor(calls.length / 2);
    const decrypts = calls.filter((c) => c[0] === 'decrypt');
    for (const [, code, s] of decrypts.slice(0, half)) rec.record(code, s);
    await metrics.registry.metrics(); // first scrape folds the first half
    await metrics.registry.metrics(); // nothing pending: nothing added twice
    for (const [, code, s] of decrypts.slice(half)) rec.record(code, s);
    expect(await rpcLines(metrics.registry)).toBe(await rpcLines(reference(decrypts)));
  });

  it('shows nothing for a method that served no call', async () => {
    const metrics = new Metrics({ processMetrics: false });
    metrics.rpcRecorder('status');
    expect(await rpcLines(metrics.registry)).not.toContain('method="status"');
  });

  it('records without the registry (plain numbers until collected)', async () => {
    const rec = new RpcRecorder('encrypt', [0.1, 1]);
    rec.record('OK', 0.5);
    rec.record('OK', 3);
    const registry = new Registry();
    const h = new Histogram({
      name: 'h',
      help: 'h',
      labelNames: ['method'],
      buckets: [0.1, 1],
      registers: [registry],
    });
    rec.foldDurations(h);
    const text = await registry.metrics();
    expect(text).toContain('h_bucket{le="0.1",method="encrypt"} 0');
    expect(text).toContain('h_bucket{le="1",method="encrypt"} 1');
    expect(text).toContain('h_bucket{le="+Inf",method="encrypt"} 2');
    expect(text).toContain('h_sum{method="encrypt"} 3.5');
  });
});
