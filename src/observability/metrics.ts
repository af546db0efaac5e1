/**
 * Prometheus metrics, prefix `kms_plugin_`, on a private registry created once and injected.
 * Labels are bounded: method, gRPC code, provider kind, operation, error kind, key state, role.
 * Never raw error text, key material or unbounded ids (key_id appears only in the info metric,
 * and only the current and previous few are kept).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ErrorKind } from '../errors.js';

export type Outcome = 'ok' | ErrorKind;

/** The slice of metrics a KEK provider may touch. */
export interface ProviderMetrics {
  remoteCalls: Counter<'provider' | 'operation' | 'outcome'>;
  remoteDuration: Histogram<'provider' | 'operation'>;
  remoteRetries: Counter<'provider' | 'operation'>;
  circuitOpen: Gauge<'provider'>;
  /** Remaining lifetime of the provider's credential (e.g. a Vault token), where it has one. */
  credentialTtl: Gauge<'provider'>;
  credentialRenewals: Counter<'provider' | 'outcome'>;
  /** Credential files re-read after they changed on disk, by outcome (ok | error). */
  credentialReloads: Counter<'provider' | 'outcome'>;
  /** The key versions a provider holds (local key files), replacing what it reported before. */
  reportLoadedVersions?(
    provider: string,
    role: string,
    versions: ReadonlyArray<{ version: string; use: string }>,
  ): void;
  /** 1 while an optional remote call (e.g. listing key versions) is refused and skipped; `call` is bounded. */
  optionalCallUnavailable: Gauge<'provider' | 'call'>;
}

export class Metrics implements ProviderMetrics {
  readonly registry: Registry;
  readonly rpcTotal: Counter<'method' | 'code'>;
  readonly rpcDuration: Histogram<'method'>;
  readonly remoteCalls: Counter<'provider' | 'operation' | 'outcome'>;
  readonly remoteDuration: Histogram<'provider' | 'operation'>;
  readonly remoteRetries: Counter<'provider' | 'operation'>;
  readonly circuitOpen: Gauge<'provider'>;
  /** Written only by the key-state owner (src/health/kek-state.ts), through setKekState. */
  readonly kekState: Gauge<'provider' | 'role' | 'state'>;
  readonly credentialTtl: Gauge<'provider'>;
  readonly credentialRenewals: Counter<'provider' | 'outcome'>;
  readonly credentialReloads: Counter<'provider' | 'outcome'>;
  readonly optionalCallUnavailable: Gauge<'provider' | 'call'>;
  readonly dekVerificationFailures: Counter<'provider' | 'check'>;
  readonly dekCacheEvents: Counter<'event'>;
  readonly dekCacheSize: Gauge;
  readonly dekRotations: Counter<'reason'>;
  readonly dekAgeSeconds: Gauge;
  readonly unwrapsCoalesced: Counter;
  readonly keyIdInfo: Gauge<'key_id' | 'provider'>;
  readonly kekRotations: Counter<'provider'>;
  readonly rollbackRefusals: Counter<'provider'>;
  readonly rollbackActive: Gauge<'provider'>;
  readonly keyIdLastChange: Gauge;
  readonly decryptsByKeyAge: Counter<'key'>;
  readonly healthy: Gauge;
  readonly ready: Gauge;
  readonly lastGoodProbe: Gauge;
  readonly secondsSinceGoodProbe: Gauge;
  readonly probes: Counter<'outcome'>;
  readonly kekVersionsLoaded: Gauge<'provider' | 'role' | 'version' | 'use'>;
  private readonly loadedVersions = new Map<
    string,
    { provider: string; role: string; versions: Array<{ version: string; use: string }> }
  >();

  constructor(options: { processMetrics?: boolean } = {}) {
    const registry = new Registry();
    this.registry = registry;
    const r = { registers: [registry] };
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'kms_plugin_' });

    // Per-RPC figures are counted in plain numbers on the hot path (RpcRecorder) and folded into
    // these two when scraped: a prom-client inc/observe per call hashes its labels into a new
    // string, twice per RPC (about 2% of the CPU and 0.5 KB of garbage per call under load).
    const recorders = this.rpcRecorders;
    this.rpcTotal = new Counter({
      name: 'kms_plugin_rpc_total',
      help: 'KMS v2 RPCs served, by method and gRPC status code.',
      labelNames: ['method', 'code'],
      collect() {
        for (const rec of recorders.values()) rec.foldCounts(this);
      },
      ...r,
    });
    this.rpcDuration = new Histogram({
      name: 'kms_plugin_rpc_duration_seconds',
      help: 'KMS v2 RPC latency as seen by the plugin, by method.',
      labelNames: ['method'],
      buckets: [...RPC_DURATION_BUCKETS],
      collect() {
        for (const rec of recorders.values()) rec.foldDurations(this);
      },
      ...r,
    });
    this.remoteCalls = new Counter({
      name: 'kms_plugin_remote_calls_total',
      help: 'Calls to the remote KMS, by provider, operation and outcome class.',
      labelNames: ['provider', 'operation', 'outcome'],
      ...r,
    });
    this.remoteDuration = new Histogram({
      name: 'kms_plugin_remote_call_duration_seconds',
      help: 'Remote KMS call latency including retries, by provider and operation.',
      labelNames: ['provider', 'operation'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
      ...r,
    });
    this.remoteRetries = new Counter({
      name: 'kms_plugin_remote_retries_total',
      help: 'Retries of remote KMS calls (throttling, transient errors).',
      labelNames: ['provider', 'operation'],
      ...r,
    });
    this.circuitOpen = new Gauge({
      name: 'kms_plugin_remote_circuit_open',
      help: '1 while the circuit breaker in front of the remote KMS is open.',
      labelNames: ['provider'],
      ...r,
    });
    this.kekState = new Gauge({
      name: 'kms_plugin_kek_state',
      help: 'State of the current KEK version (1 for the current state). Alert on anything but state="enabled".',
      labelNames: ['provider', 'role', 'state'],
      ...r,
    });
    this.credentialTtl = new Gauge({
      name: 'kms_plugin_credential_ttl_seconds',
      help: 'Seconds until the provider credential (e.g. Vault token) expires.',
      labelNames: ['provider'],
      ...r,
    });
    this.credentialRenewals = new Counter({
      name: 'kms_plugin_credential_renewals_total',
      help: 'Credential renewals and re-logins, by outcome.',
      labelNames: ['provider', 'outcome'],
      ...r,
    });
    this.credentialReloads = new Counter({
      name: 'kms_plugin_credential_reloads_total',
      help: 'Credential files re-read after they changed on disk, by outcome (ok | error).',
      labelNames: ['provider', 'outcome'],
      ...r,
    });
    this.optionalCallUnavailable = new Gauge({
      name: 'kms_plugin_optional_call_unavailable',
      help: '1 while an optional remote call (e.g. listing key versions) is refused and skipped; the plugin serves without it and retries hourly.',
      labelNames: ['provider', 'call'],
      ...r,
    });
    this.dekVerificationFailures = new Counter({
      name: 'kms_plugin_dek_verification_failures_total',
      help: 'Unwrapped DEKs the KMS returned that failed verification (commitment or first open); dropped, never cached.',
      labelNames: ['provider', 'check'],
      ...r,
    });
    const pendingHits = this.pendingCacheHits;
    this.dekCacheEvents = new Counter({
      name: 'kms_plugin_dek_cache_events_total',
      help: 'Unwrapped-DEK cache events: hit, miss, eviction, expiry.',
      labelNames: ['event'],
      // Hits (one per Decrypt served from the cache) are counted in plain numbers, added here.
      collect() {
        if (pendingHits.n > 0) this.inc({ event: 'hit' }, pendingHits.n);
        pendingHits.n = 0;
      },
      ...r,
    });
    this.dekCacheSize = new Gauge({
      name: 'kms_plugin_dek_cache_size',
      help: 'Unwrapped DEKs held in memory.',
      ...r,
    });
    this.dekRotations = new Counter({
      name: 'kms_plugin_dek_rotations_total',
      help: 'New write DEKs generated, by reason (startup, age, uses, kek_change, generation).',
      labelNames: ['reason'],
      ...r,
    });
    this.dekAgeSeconds = new Gauge({
      name: 'kms_plugin_write_dek_age_seconds',
      help: 'Age of the DEK used for new Encrypts.',
      ...r,
    });
    this.unwrapsCoalesced = new Counter({
      name: 'kms_plugin_unwraps_coalesced_total',
      help: 'Decrypts that shared an unwrap already in flight instead of calling the KMS again.',
      ...r,
    });
    this.keyIdInfo = new Gauge({
      name: 'kms_plugin_key_id_info',
      help: 'The key_id Status reports (value 1 for the current one).',
      labelNames: ['key_id', 'provider'],
      ...r,
    });
    this.kekRotations = new Counter({
      name: 'kms_plugin_kek_rotations_total',
      help: 'Adoptions of a new remote KEK version (key_id changes).',
      labelNames: ['provider'],
      ...r,
    });
    this.rollbackRefusals = new Counter({
      name: 'kms_plugin_kek_rollback_refusals_total',
      help: 'Probes that saw the remote primary move back to an older version; the plugin kept the newer one.',
      labelNames: ['provider'],
      ...r,
    });
    this.rollbackActive = new Gauge({
      name: 'kms_plugin_kek_rollback_active',
      help: '1 while the remote primary points at an older key version than the one the plugin keeps using (alert on it).',
      labelNames: ['provider'],
      ...r,
    });
    this.keyIdLastChange = new Gauge({
      name: 'kms_plugin_key_id_last_change_timestamp_seconds',
      help: 'Unix time the current key_id was adopted (start-up or KEK rotation); start a storage migration 3 + N + M minutes after a change.',
      ...r,
    });
    const pendingDecrypts = this.pendingDecrypts;
    this.decryptsByKeyAge = new Counter({
      name: 'kms_plugin_decrypts_by_key_total',
      help: 'Successful Decrypts by whether the object uses the current key_id or an older one (watch a migration drain).',
      labelNames: ['key'],
      // Counted per Decrypt in plain numbers (countDecrypt), added here when scraped.
      collect() {
        for (const key of ['current', 'older'] as const) {
          if (pendingDecrypts[key] > 0) this.inc({ key }, pendingDecrypts[key]);
          pendingDecrypts[key] = 0;
        }
      },
      ...r,
    });
    // Computed when scraped, so /metrics never disagrees with /healthz and /readyz.
    const state = (): { healthy: boolean; ready: boolean } | undefined => this.healthSource?.();
    this.healthy = new Gauge({
      name: 'kms_plugin_healthy',
      help: '1 when Status reports healthz "ok".',
      collect() {
        const s = state();
        if (s) this.set(s.healthy ? 1 : 0);
      },
      ...r,
    });
    this.ready = new Gauge({
      name: 'kms_plugin_ready',
      help: '1 when a write DEK is ready (Encrypt can be served).',
      collect() {
        const s = state();
        if (s) this.set(s.ready ? 1 : 0);
      },
      ...r,
    });
    const lastGood = (): number | undefined => this.lastGoodProbeSource?.();
    this.secondsSinceGoodProbe = new Gauge({
      name: 'kms_plugin_seconds_since_last_successful_probe',
      help: 'Seconds since the last successful KEK probe (absent before the first one). Alert when it exceeds a few probe intervals.',
      collect() {
        const t = lastGood();
        if (t !== undefined) this.set(Math.max(0, (Date.now() - t) / 1000));
      },
      ...r,
    });
    this.lastGoodProbe = new Gauge({
      name: 'kms_plugin_last_successful_probe_timestamp_seconds',
      help: 'Unix time of the last successful KEK probe (seconds since = time() - this).',
      ...r,
    });
    this.probes = new Counter({
      name: 'kms_plugin_kek_probes_total',
      help: 'Background KEK probes, by outcome.',
      labelNames: ['outcome'],
      ...r,
    });
    const loaded = this.loadedVersions;
    this.kekVersionsLoaded = new Gauge({
      name: 'kms_plugin_kek_versions_loaded',
      help: 'Key versions this plugin holds (local key file): 1 per version, use=write|decrypt|staged. Check every replica has a staged version before promoting it.',
      labelNames: ['provider', 'role', 'version', 'use'],
      collect() {
        this.reset();
        for (const { provider, role, versions } of loaded.values())
          for (const v of versions) this.set({ provider, role, version: v.version, use: v.use }, 1);
      },
      ...r,
    });
  }

  reportLoadedVersions(
    provider: string,
    role: string,
    versions: ReadonlyArray<{ version: string; use: string }>,
  ): void {
    this.loadedVersions.set(`${provider}\0${role}`, {
      provider,
      role,
      versions: versions.map((v) => ({ ...v })),
    });
  }

  private readonly rpcRecorders = new Map<string, RpcRecorder>();
  private readonly pendingDecrypts = { current: 0, older: 0 };
  private readonly pendingCacheHits = { n: 0 };

  /** One DEK cache hit (kms_plugin_dek_cache_events_total{event="hit"} at the next scrape). */
  countDekCacheHit(): void {
    this.pendingCacheHits.n += 1;
  }

  /** One successful Decrypt, by key age (kms_plugin_decrypts_by_key_total at the next scrape). */
  countDecrypt(key: 'current' | 'older'): void {
    this.pendingDecrypts[key] += 1;
  }

  /**
   * The recorder of one RPC method (kept by the server; one per method). What it counts shows in
   * kms_plugin_rpc_total and kms_plugin_rpc_duration_seconds at the next scrape.
   */
  rpcRecorder(method: string): RpcRecorder {
    let rec = this.rpcRecorders.get(method);
    if (!rec) {
      rec = new RpcRecorder(method, RPC_DURATION_BUCKETS);
      this.rpcRecorders.set(method, rec);
    }
    return rec;
  }

  private healthSource: (() => { healthy: boolean; ready: boolean }) | undefined;
  private lastGoodProbeSource: (() => number | undefined) | undefined;

  /** Where kms_plugin_healthy, _ready and _seconds_since_last_successful_probe read their values at scrape time. */
  setHealthSource(
    source: () => { healthy: boolean; ready: boolean },
    lastGoodProbeMs?: () => number | undefined,
  ): void {
    this.healthSource = source;
    this.lastGoodProbeSource = lastGoodProbeMs;
  }

  /** Sets the state gauge so exactly one state is 1 for a provider/role. */
  setKekState(provider: string, role: string, state: string, allStates: readonly string[]): void {
    for (const s of allStates) this.kekState.set({ provider, role, state: s }, s === state ? 1 : 0);
  }
}

/** Upper bounds of kms_plugin_rpc_duration_seconds. */
export const RPC_DURATION_BUCKETS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];

/** What prom-client 15 keeps per label set of a histogram (its `hashMap` values). */
interface HistogramEntry {
  labels: Record<string, string>;
  bucketValues: Record<number, number>;
  sum: number;
  count: number;
}

/**
 * Counts and latencies of one RPC method in plain numbers: record() allocates nothing. The
 * pending figures are added to the prom-client metrics when they are collected (at scrape time),
 * so /metrics shows exactly what inc()/observe() per call would have shown.
 */
export class RpcRecorder {
  private readonly codes: string[] = [];
  private readonly codeCounts: number[] = [];
  /** Pending observations per bucket; the last slot is above the largest bound (+Inf only). */
  private readonly buckets: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(
    readonly method: string,
    private readonly bounds: readonly number[],
  ) {
    this.buckets = new Float64Array(bounds.length + 1);
  }

  /** One RPC: its gRPC code name (as in kms_plugin_rpc_total) and its duration in seconds. */
  record(code: string, seconds: number): void {
    const codes = this.codes;
    let i = 0;
    while (i < codes.length && codes[i] !== code) i++;
    if (i === codes.length) {
      codes.push(code);
      this.codeCounts.push(0);
    }
    this.codeCounts[i] += 1;
    const bounds = this.bounds;
    let b = 0;
    while (b < bounds.length && !(seconds <= bounds[b])) b++;
    this.buckets[b] += 1;
    this.sum += seconds;
    this.count += 1;
  }

  /** Adds the pending counts to the counter (by method and code) and clears them. */
  foldCounts(counter: Counter<'method' | 'code'>): void {
    for (let i = 0; i < this.codes.length; i++) {
      const n = this.codeCounts[i];
      if (n === 0) continue;
      counter.inc({ method: this.method, code: this.codes[i] }, n);
      this.codeCounts[i] = 0;
    }
  }

  /**
   * Adds the pending observations to the histogram's series for this method and clears them.
   * prom-client has no "observe N times" call, so this adds to the series prom-client keeps
   * (created with zero() first); test/unit/observability/metrics.test.ts checks the exposition
   * is identical to observe() per value, so a prom-client upgrade that changes this fails there.
   */
  foldDurations(histogram: Histogram<'method'>): void {
    if (this.count === 0) return;
    const map = (histogram as unknown as { hashMap: Record<string, HistogramEntry> }).hashMap;
    let entry = Object.values(map).find((e) => e.labels.method === this.method);
    if (!entry) {
      histogram.zero({ method: this.method });
      entry = Object.values(map).find((e) => e.labels.method === this.method);
      if (!entry) throw new Error('prom-client histogram internals changed (see RpcRecorder)');
    }
    for (let b = 0; b < this.bounds.length; b++) {
      entry.bucketValues[this.bounds[b]] += this.buckets[b];
    }
    entry.sum += this.sum;
    entry.count += this.count;
    this.buckets.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}
