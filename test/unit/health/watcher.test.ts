import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from '@jest/globals';
import { Envelope } from '../../../src/envelope/envelope.js';
import {
  KeyDisabledError,
  PluginError,
  UnauthenticatedError,
  UnavailableError,
  UnknownKeyError,
} from '../../../src/errors.js';
import { withKeyState } from '../../../src/kek/key-state.js';
import { createHealthView } from '../../../src/health/view.js';
import { renderChecks } from '../../../src/health/http-format.js';
import { KekWatcher, sameVersion, type ProbeSettings } from '../../../src/health/watcher.js';
import type { KekProvider, KekRef, KeyState, KeyVersionInfo, WrapResult } from '../../../src/kek/types.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { createLogger, silentLogger, type Logger } from '../../../src/observability/logger.js';
import { REPEAT_BAD_STATE_MS } from '../../../src/health/kek-state.js';

/** A controllable KEK: versions, primary, state, failures. */
class FakeKek implements KekProvider {
  readonly kind = 'local' as const;
  readonly description = 'fake';
  readonly key = 'fake-key';
  readonly versions = new Map<string, Buffer>([['1', randomBytes(32)]]);
  primary = '1';
  state: KeyState = 'enabled';
  detail: string | undefined;
  failCurrent: number | 'always' = 0;
  /** Thrown by currentVersion() while set (a "key unusable" error, e.g. AWS NotFoundException). */
  failWith: Error | undefined;
  failWrap: Error | undefined;
  calls = { currentVersion: 0, wrap: 0, unwrap: 0, newestVersion: 0 };
  /** Set to offer newestVersion() (what local, GCP and Azure implement). */
  newestVersion?: (signal: AbortSignal) => Promise<KeyVersionInfo | undefined>;
  newestState: KeyState = 'enabled';

  enableNewest(): void {
    this.newestVersion = async () => {
      this.calls.newestVersion += 1;
      const v = String(Math.max(...[...this.versions.keys()].map(Number)));
      return { ref: this.ref(v), state: this.newestState, ordinal: Number(v) };
    };
  }
  private hints: Array<() => void> = [];

  addVersion(): string {
    const v = String(this.versions.size + 1);
    this.versions.set(v, randomBytes(32));
    this.primary = v;
    return v;
  }

  ref(v = this.primary): KekRef {
    return { provider: 'local', key: this.key, version: v, unique: `u${v}` };
  }

  async currentVersion(): Promise<KeyVersionInfo> {
    this.calls.currentVersion += 1;
    if (this.failWith) throw this.failWith;
    if (this.failCurrent === 'always' || this.failCurrent > 0) {
      if (this.failCurrent !== 'always') this.failCurrent -= 1;
      throw new UnavailableError('kms unreachable');
    }
    return { ref: this.ref(), state: this.state, detail: this.detail, ordinal: Number(this.primary) };
  }

  async wrap(dek: Buffer, version: KeyVersionInfo): Promise<WrapResult> {
    this.calls.wrap += 1;
    if (this.failWrap) throw this.failWrap;
    const nonce = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.versions.get(version.ref.version) as Buffer, nonce);
    const body = Buffer.concat([c.update(dek), c.final()]);
    return { wrapped: Buffer.concat([nonce, body, c.getAuthTag()]), ref: version.ref };
  }

  async unwrap(wrapped: Buffer, ref: KekRef): Promise<Buffer> {
    this.calls.unwrap += 1;
    try {
      const d = createDecipheriv(
        'aes-256-gcm',
        this.versions.get(ref.version) as Buffer,
        wrapped.subarray(0, 12),
      );
      d.setAuthTag(wrapped.subarray(wrapped.length - 16));
      return Buffer.concat([d.update(wrapped.subarray(12, wrapped.length - 16)), d.final()]);
    } catch {
      throw new UnauthenticatedError('bad');
    }
  }

  canUnwrap(ref: KekRef): boolean {
    return ref.key === this.key;
  }

  onChangeHint(l: () => void): void {
    this.hints.push(l);
  }

  hint(): void {
    for (const h of this.hints) h();
  }

  async close(): Promise<void> {}
}

const watchers: KekWatcher[] = [];
afterEach(() => {
  for (const w of watchers.splice(0)) w.stop();
});

function setup(
  opts: {
    probe?: Partial<ProbeSettings>;
    dekMaxUses?: number;
    dekMaxAgeMs?: number;
    statusVersion?: 'v2' | 'v2beta1';
    logger?: Logger;
  } = {},
) {
  const clock = { t: 1_000_000 };
  const now = (): number => clock.t;
  const kek = new FakeKek();
  const metrics = new Metrics({ processMetrics: false });
  const envelope = new Envelope({
    primary: kek,
    keyIdGeneration: 0,
    dekMaxAgeMs: opts.dekMaxAgeMs ?? 7 * 86_400_000,
    dekMaxUses: opts.dekMaxUses ?? 1_000_000,
    cacheSize: 10,
    cacheTtlMs: 3_600_000,
    maxPlaintextBytes: 995,
    logger: silentLogger(),
    metrics,
    now,
  });
  const watcher = new KekWatcher({
    envelope,
    provider: kek,
    probe: {
      intervalMs: 20,
      jitter: 0,
      timeoutMs: 1000,
      stableObservations: 2,
      healthGraceMs: 5000,
      ...opts.probe,
    },
    statusVersion: opts.statusVersion ?? 'v2',
    logger: opts.logger ?? silentLogger(),
    metrics,
    now,
    random: () => 0.5,
  });
  watchers.push(watcher);
  return { kek, envelope, watcher, metrics, clock };
}

async function metricValue(
  metrics: Metrics,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const text = await metrics.registry.getSingleMetricAsString(name);
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(name)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      return Number(line.split(' ').pop());
  }
  return 0;
}

const waitFor = async (cond: () => boolean, ms = 3000): Promise<void> => {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('priming', () => {
  it('before priming, Status is an error (unavailable) and names the last failure', async () => {
    const { kek, watcher } = setup();
    const s0 = watcher.status();
    expect(s0.ok).toBe(false);
    if (!s0.ok) {
      expect(s0.error).toBeInstanceOf(UnavailableError);
      expect(s0.error.message).toMatch(/waiting for the first KEK probe/);
    }
    kek.failCurrent = 1;
    await watcher.probeNow();
    const s1 = watcher.status();
    expect(s1.ok).toBe(false);
    if (!s1.ok) expect(s1.error.message).toMatch(/unavailable: kms unreachable/);
    expect(watcher.healthz()).toBe('no successful kek probe yet');
  });

  it('retries until the provider answers, then Status is ok with the key_id', async () => {
    const { kek, watcher, envelope } = setup({ statusVersion: 'v2beta1' });
    kek.failCurrent = 3;
    watcher.start();
    await watcher.waitUntilPrimed(5000);
    expect(kek.calls.currentVersion).toBeGreaterThanOrEqual(4);
    const s = watcher.status();
    expect(s).toEqual({
      ok: true,
      version: 'v2beta1',
      healthz: 'ok',
      keyId: envelope.keyIdFor(kek.ref('1')),
    });
    expect(watcher.snapshot().primed).toBe(true);
  });

  it('waitUntilPrimed rejects with the last error when the KEK never answers', async () => {
    const { kek, watcher } = setup();
    kek.failCurrent = 'always';
    watcher.start();
    await expect(watcher.waitUntilPrimed(150)).rejects.toBeInstanceOf(PluginError);
  });

  it('a disabled key at start-up is not primed', async () => {
    const { kek, watcher, envelope } = setup();
    kek.state = 'disabled';
    await watcher.probeNow();
    expect(envelope.currentKeyId()).toBeUndefined();
    expect(kek.calls.wrap).toBe(0);
    const s = watcher.status();
    expect(s.ok).toBe(false);
    if (!s.ok) expect(s.error.message).toMatch(/key_disabled/);
  });

  it('stop() ends the probing', async () => {
    const { kek, watcher } = setup();
    watcher.start();
    await watcher.waitUntilPrimed(2000);
    await waitFor(() => kek.calls.currentVersion >= 3);
    watcher.stop();
    await new Promise((r) => setTimeout(r, 30));
    const calls = kek.calls.currentVersion;
    await new Promise((r) => setTimeout(r, 80));
    expect(kek.calls.currentVersion).toBe(calls);
  });
});

describe('rotation watcher', () => {
  it('adopts a new version only after stableObservations probes and a successful wrap', async () => {
    const { kek, watcher, envelope, metrics } = setup({ probe: { stableObservations: 3 } });
    await watcher.probeNow();
    const id1 = envelope.currentKeyId();
    expect(id1).toBe(envelope.keyIdFor(kek.ref('1')));
    kek.addVersion();
    await watcher.probeNow();
    await watcher.probeNow();
    expect(envelope.currentKeyId()).toBe(id1);
    expect(watcher.snapshot().pendingVersion).toEqual({ ref: kek.ref('2'), observations: 2 });
    expect(kek.calls.wrap).toBe(1);
    await watcher.probeNow();
    expect(envelope.currentKeyId()).toBe(envelope.keyIdFor(kek.ref('2')));
    expect(watcher.status()).toMatchObject({ ok: true, keyId: envelope.keyIdFor(kek.ref('2')) });
    expect(watcher.snapshot().pendingVersion).toBeUndefined();
    expect(await metricValue(metrics, 'kms_plugin_kek_rotations_total', { provider: 'local' })).toBe(1);
    expect(
      await metricValue(metrics, 'kms_plugin_key_id_info', { key_id: envelope.currentKeyId() as string }),
    ).toBe(1);
  });

  it('a wrap failure means no switch; it switches once the wrap works', async () => {
    const { kek, watcher, envelope } = setup({ probe: { stableObservations: 2 } });
    await watcher.probeNow();
    const id1 = envelope.currentKeyId();
    kek.addVersion();
    kek.failWrap = new UnavailableError('wrap failed');
    for (let i = 0; i < 4; i++) await watcher.probeNow();
    expect(envelope.currentKeyId()).toBe(id1);
    expect(watcher.status()).toMatchObject({ ok: true, keyId: id1 });
    expect(watcher.snapshot().lastError?.message).toBe('wrap failed');
    kek.failWrap = undefined;
    await watcher.probeNow();
    expect(envelope.currentKeyId()).toBe(envelope.keyIdFor(kek.ref('2')));
  });

  it('a flapping new version restarts the count', async () => {
    const { kek, watcher, envelope } = setup({ probe: { stableObservations: 2 } });
    await watcher.probeNow();
    const id1 = envelope.currentKeyId();
    kek.addVersion();
    await watcher.probeNow(); // v2 seen once
    kek.primary = '1';
    await watcher.probeNow(); // back to current: candidate reset
    kek.primary = '2';
    await watcher.probeNow(); // v2 seen once again
    expect(envelope.currentKeyId()).toBe(id1);
    await watcher.probeNow();
    expect(envelope.currentKeyId()).toBe(envelope.keyIdFor(kek.ref('2')));
  });

  it('a new version that is not enabled is not adopted', async () => {
    const { kek, watcher, envelope } = setup({ probe: { stableObservations: 1 } });
    await watcher.probeNow();
    const id1 = envelope.currentKeyId();
    kek.addVersion();
    kek.state = 'pending_import';
    await watcher.probeNow();
    await watcher.probeNow();
    expect(envelope.currentKeyId()).toBe(id1);
    expect(kek.calls.wrap).toBe(1);
  });

  it('a rollback to an older ordinal of the same key is refused and counted', async () => {
    const { kek, watcher, envelope, metrics } = setup({ probe: { stableObservations: 1 } });
    await watcher.probeNow();
    kek.addVersion();
    await watcher.probeNow();
    const id2 = envelope.currentKeyId();
    expect(id2).toBe(envelope.keyIdFor(kek.ref('2')));
    kek.primary = '1';
    await watcher.probeNow();
    expect(envelope.currentKeyId()).toBe(id2);
    expect(watcher.snapshot().rollbackRefused).toEqual(kek.ref('1'));
    expect(await metricValue(metrics, 'kms_plugin_kek_rollback_refusals_total', { provider: 'local' })).toBe(
      1,
    );
    await watcher.probeNow();
    expect(envelope.currentKeyId()).toBe(id2);
    expect(await metricValue(metrics, 'kms_plugin_kek_rollback_refusals_total', { provider: 'local' })).toBe(
      2,
    );
    expect(kek.calls.wrap).toBe(2);
    expect(watcher.status()).toMatchObject({ ok: true, keyId: id2 });
    // Forward again: the refusal clears.
    kek.primary = '2';
    await watcher.probeNow();
    expect(watcher.snapshot().rollbackRefused).toBeUndefined();
  });
});

describe('rollback with newestVersion()', () => {
  it('the primary moved back: the watcher keeps wrapping with the newest version and flags the rollback', async () => {
    const { kek, watcher, envelope, metrics } = setup({ probe: { stableObservations: 1 } });
    kek.enableNewest();
    await watcher.probeNow();
    kek.addVersion();
    await watcher.probeNow();
    const id2 = envelope.keyIdFor(kek.ref('2'));
    expect(envelope.currentKeyId()).toBe(id2);
    expect(watcher.snapshot().rollbackRefused).toBeUndefined();
    kek.primary = '1';
    await watcher.probeNow();
    expect(envelope.currentKeyId()).toBe(id2);
    expect(watcher.snapshot().rollbackRefused).toEqual(kek.ref('1'));
    expect(await metricValue(metrics, 'kms_plugin_kek_rollback_refusals_total', { provider: 'local' })).toBe(
      1,
    );
    expect(await metricValue(metrics, 'kms_plugin_kek_rollback_active', { provider: 'local' })).toBe(1);
    expect(watcher.status()).toMatchObject({ ok: true, keyId: id2 });
    // /healthz?verbose says why (issue 12.6), not a bare "[+]kek-rollback ok".
    const view = createHealthView({ watcher });
    const body = renderChecks(view.health().checks, { verbose: true, endpoint: 'healthz' }).body;
    expect(body).toMatch(
      /\[\+\]kek-rollback ok: refusing rollback: remote primary is older version 1; keeping 2 \(key_ids are never reused\)/,
    );
    kek.primary = '2';
    await watcher.probeNow();
    expect(watcher.snapshot().rollbackRefused).toBeUndefined();
    expect(await metricValue(metrics, 'kms_plugin_kek_rollback_active', { provider: 'local' })).toBe(0);
    expect(kek.calls.wrap).toBe(2);
  });

  it('at start-up with the primary behind the newest version, the newest is adopted (never an old key_id)', async () => {
    const { kek, watcher, envelope } = setup();
    kek.enableNewest();
    kek.addVersion();
    kek.primary = '1';
    await watcher.probeNow();
    expect(envelope.currentKeyId()).toBe(envelope.keyIdFor(kek.ref('2')));
    expect(watcher.snapshot().rollbackRefused).toEqual(kek.ref('1'));
  });

  it('steady state costs one remote call per probe: versions are listed only when the primary differs from the version in use', async () => {
    const { kek, watcher, envelope } = setup({ probe: { stableObservations: 1 } });
    kek.enableNewest();
    await watcher.probeNow(); // priming consults the list once
    expect(kek.calls.newestVersion).toBe(1);
    for (let i = 0; i < 5; i++) await watcher.probeNow();
    expect(kek.calls.newestVersion).toBe(1);
    expect(kek.calls.currentVersion).toBe(6);
    kek.addVersion(); // a rotation: the primary differs, so the list is consulted again
    await watcher.probeNow();
    expect(kek.calls.newestVersion).toBe(2);
    expect(envelope.currentKeyId()).toBe(envelope.keyIdFor(kek.ref('2')));
    kek.primary = '1'; // a rollback is still caught on the next probe
    await watcher.probeNow();
    expect(watcher.snapshot().rollbackRefused).toEqual(kek.ref('1'));
    expect(envelope.currentKeyId()).toBe(envelope.keyIdFor(kek.ref('2')));
  });

  it('a newest version that is not enabled is ignored: the primary is used', async () => {
    const { kek, watcher, envelope } = setup();
    kek.enableNewest();
    kek.addVersion();
    kek.primary = '1';
    kek.newestState = 'disabled';
    await watcher.probeNow();
    expect(envelope.currentKeyId()).toBe(envelope.keyIdFor(kek.ref('1')));
    expect(watcher.snapshot().rollbackRefused).toBeUndefined();
  });
});

describe('key state', () => {
  it.each<KeyState>(['disabled', 'pending_deletion', 'destroyed', 'expired'])(
    '%s → Status error of kind key_disabled; back to ok when re-enabled',
    async (state) => {
      const { kek, watcher, envelope, metrics } = setup();
      await watcher.probeNow();
      const id = envelope.currentKeyId();
      kek.state = state;
      kek.detail = 'scheduled for 2026-12-01';
      await watcher.probeNow();
      const s = watcher.status();
      expect(s.ok).toBe(false);
      if (!s.ok) {
        expect(s.error).toBeInstanceOf(KeyDisabledError);
        expect(s.error.kind).toBe('key_disabled');
        expect(s.error.message).toContain(state.replace(/_/g, ' '));
        expect(s.error.message).toContain('scheduled for 2026-12-01');
      }
      expect(await metricValue(metrics, 'kms_plugin_kek_state', { state })).toBe(1);
      expect(await metricValue(metrics, 'kms_plugin_kek_state', { state: 'enabled' })).toBe(0);
      expect(await metricValue(metrics, 'kms_plugin_healthy')).toBe(0);
      kek.state = 'enabled';
      kek.detail = undefined;
      await watcher.probeNow();
      expect(watcher.status()).toEqual({ ok: true, version: 'v2', healthz: 'ok', keyId: id });
      expect(await metricValue(metrics, 'kms_plugin_kek_state', { state: 'enabled' })).toBe(1);
      expect(await metricValue(metrics, 'kms_plugin_healthy')).toBe(1);
    },
  );

  it.each<[KeyState, () => PluginError]>([
    [
      'disabled',
      () =>
        withKeyState(
          new KeyDisabledError('aws DescribeKey k: DisabledException: key is disabled'),
          'disabled',
        ),
    ],
    [
      'pending_deletion',
      () =>
        withKeyState(
          new KeyDisabledError('aws DescribeKey k: KMSInvalidStateException: k is pending deletion'),
          'pending_deletion',
        ),
    ],
    [
      'destroyed',
      () => withKeyState(new KeyDisabledError('gcp: CryptoKeyVersion 1 is DESTROYED'), 'destroyed'),
    ],
    [
      'not_found',
      () =>
        withKeyState(new UnknownKeyError('aws DescribeKey k: NotFoundException: no such key'), 'not_found'),
    ],
  ])(
    'a "key unusable" signal that comes as an error (%s) stops writes within one probe, names the cause, and recovers within one probe (issue 12.2/12.3)',
    async (state, makeError) => {
      const { kek, watcher, envelope, metrics } = setup();
      await watcher.probeNow();
      const id = envelope.currentKeyId();
      const seed = randomBytes(32);
      const r = envelope.encrypt(seed);
      const err = makeError();
      kek.failWith = err;
      await watcher.probeNow();
      const s = watcher.status();
      expect(s.ok).toBe(false);
      if (!s.ok) {
        expect(s.error.kind).toBe('key_disabled'); // FAILED_PRECONDITION
        expect(s.error.message).toContain(state.replace(/_/g, ' '));
        expect(s.error.message).toContain(err.message);
      }
      expect(await metricValue(metrics, 'kms_plugin_kek_state', { state })).toBe(1);
      // Encrypt refuses too (the write DEK is cached, but its KEK is known to be unusable) ...
      expect(() => envelope.encrypt(randomBytes(32))).toThrow(KeyDisabledError);
      // ... while Decrypts of cached DEKs keep working.
      await expect(
        envelope.decrypt(r.ciphertext, r.keyId, r.annotations, new AbortController().signal),
      ).resolves.toEqual(seed);
      kek.failWith = undefined;
      await watcher.probeNow();
      expect(watcher.status()).toEqual({ ok: true, version: 'v2', healthz: 'ok', keyId: id });
      expect(envelope.encrypt(randomBytes(32)).keyId).toBe(id);
      expect(await metricValue(metrics, 'kms_plugin_kek_state', { state: 'enabled' })).toBe(1);
    },
  );

  it('key-state lines come from the one owner: one per change, again at most every REPEAT_BAD_STATE_MS, info on recovery (issue 14.1)', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', destination: { write: (l: string) => void lines.push(l) } });
    const { kek, watcher, clock, metrics } = setup({ logger });
    const stateLines = (): Array<Record<string, unknown>> =>
      lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((r) => r.state !== undefined);
    await watcher.probeNow();
    expect(stateLines()).toEqual([
      expect.objectContaining({ level: 'info', msg: 'KEK enabled', role: 'primary' }),
    ]);
    kek.state = 'disabled';
    for (let i = 0; i < 5; i++) {
      await watcher.probeNow();
      clock.t += 60_000;
    }
    expect(stateLines().filter((r) => r.level === 'error')).toHaveLength(1);
    clock.t += REPEAT_BAD_STATE_MS;
    await watcher.probeNow();
    expect(stateLines().filter((r) => r.level === 'error')).toHaveLength(2);
    kek.state = 'enabled';
    await watcher.probeNow();
    await watcher.probeNow();
    expect(stateLines().at(-1)).toMatchObject({
      level: 'info',
      state: 'enabled',
      msg: 'KEK enabled again (was disabled)',
    });
    expect(stateLines()).toHaveLength(4);
    expect(await metricValue(metrics, 'kms_plugin_kek_state', { state: 'enabled', role: 'primary' })).toBe(1);
  });

  it('an error marked unavailable before the first data key (Vault sealed, token silent) sets the metric; Status stays not ready', async () => {
    const { kek, watcher, metrics } = setup();
    kek.failWith = withKeyState(new UnavailableError('Vault is sealed'), 'unavailable');
    await watcher.probeNow();
    expect(
      await metricValue(metrics, 'kms_plugin_kek_state', { state: 'unavailable', role: 'primary' }),
    ).toBe(1);
    const s = watcher.status();
    expect(s.ok).toBe(false);
    if (!s.ok) expect(s.error.kind).toBe('unavailable');
    kek.failWith = undefined;
    await watcher.probeNow();
    expect(watcher.status().ok).toBe(true);
    expect(await metricValue(metrics, 'kms_plugin_kek_state', { state: 'enabled', role: 'primary' })).toBe(1);
  });

  it('a transient probe error (not a key state) keeps Status ok and Encrypt working', async () => {
    const { kek, watcher, envelope } = setup();
    await watcher.probeNow();
    kek.failCurrent = 1;
    await watcher.probeNow();
    expect(watcher.status().ok).toBe(true);
    expect(envelope.encrypt(randomBytes(32)).keyId).toBe(envelope.currentKeyId());
  });

  it.each(['disabled', 'pending_deletion', 'destroyed'] as const)(
    'a primary that moved to a version in state %s stops writes, although the adopted version is still enabled',
    async (state) => {
      const { kek, watcher, envelope } = setup({ probe: { stableObservations: 1 } });
      await watcher.probeNow();
      const id = envelope.currentKeyId();
      kek.addVersion();
      kek.state = state;
      await watcher.probeNow();
      expect(envelope.currentKeyId()).toBe(id);
      expect(watcher.status().ok).toBe(false);
      expect(() => envelope.encrypt(randomBytes(32))).toThrow(KeyDisabledError);
    },
  );

  it('state unavailable keeps Status ok but healthz names it', async () => {
    const { kek, watcher } = setup();
    await watcher.probeNow();
    kek.state = 'unavailable';
    kek.detail = 'vault sealed';
    await watcher.probeNow();
    const s = watcher.status();
    expect(s.ok).toBe(true);
    expect(watcher.healthz()).toBe('kek unavailable: vault sealed');
  });
});

describe('probe failures and healthGrace', () => {
  it('a probe failure keeps the key_id; healthz turns non-ok only after healthGrace', async () => {
    const { kek, watcher, envelope, clock, metrics } = setup({ probe: { healthGraceMs: 5000 } });
    await watcher.probeNow();
    const id = envelope.currentKeyId();
    kek.failCurrent = 'always';
    clock.t += 1000;
    await watcher.probeNow();
    expect(watcher.status()).toEqual({ ok: true, version: 'v2', healthz: 'ok', keyId: id });
    clock.t += 4000; // exactly the grace
    expect(watcher.healthz()).toBe('ok');
    clock.t += 1;
    await watcher.probeNow();
    expect(watcher.healthz()).toBe('kek probe failing for 5s (unavailable)');
    const s = watcher.status();
    expect(s).toEqual({
      ok: true,
      version: 'v2',
      healthz: 'kek probe failing for 5s (unavailable)',
      keyId: id,
    });
    expect(await metricValue(metrics, 'kms_plugin_healthy')).toBe(0);
    expect(await metricValue(metrics, 'kms_plugin_kek_probes_total', { outcome: 'unavailable' })).toBe(2);
    kek.failCurrent = 0;
    await watcher.probeNow();
    expect(watcher.healthz()).toBe('ok');
    expect(envelope.currentKeyId()).toBe(id);
    expect(await metricValue(metrics, 'kms_plugin_healthy')).toBe(1);
  });
});

describe('DEK rotation', () => {
  it('rotates the write DEK when due by uses (same key_id, new DEK)', async () => {
    const { watcher, envelope } = setup({ dekMaxUses: 2 });
    await watcher.probeNow();
    const before = envelope.writeInfo();
    envelope.encrypt(randomBytes(32));
    envelope.encrypt(randomBytes(32));
    await waitFor(() => envelope.writeInfo()?.dekId !== before?.dekId);
    expect(envelope.currentKeyId()).toBe(before?.keyId);
    expect(envelope.writeInfo()?.uses).toBe(0);
  });

  it('rotates the write DEK when due by age, on the next probe', async () => {
    const { watcher, envelope, clock, kek } = setup({ dekMaxAgeMs: 60_000 });
    await watcher.probeNow();
    const before = envelope.writeInfo();
    clock.t += 30_000;
    await watcher.probeNow();
    await new Promise((r) => setTimeout(r, 10));
    expect(envelope.writeInfo()?.dekId).toBe(before?.dekId);
    clock.t += 30_000;
    await watcher.probeNow();
    await waitFor(() => envelope.writeInfo()?.dekId !== before?.dekId);
    expect(envelope.currentKeyId()).toBe(before?.keyId);
    expect(envelope.writeInfo()?.createdAt).toBe(clock.t);
    expect(kek.calls.wrap).toBe(2);
  });
});

describe('change hints', () => {
  it('a provider hint triggers a probe soon', async () => {
    const { kek, watcher } = setup({ probe: { intervalMs: 60_000 } });
    watcher.start();
    await watcher.waitUntilPrimed(2000);
    const calls = kek.calls.currentVersion;
    kek.hint();
    await waitFor(() => kek.calls.currentVersion > calls, 1000);
  });
});

describe('sameVersion', () => {
  it('compares provider, key, version and unique (absent = empty)', () => {
    const a: KekRef = { provider: 'local', key: 'k', version: '1' };
    expect(sameVersion(a, { ...a })).toBe(true);
    expect(sameVersion(a, { ...a, unique: '' })).toBe(true);
    expect(sameVersion(a, { ...a, unique: 'x' })).toBe(false);
    expect(sameVersion(a, { ...a, version: '2' })).toBe(false);
    expect(sameVersion(a, { ...a, key: 'j' })).toBe(false);
    expect(sameVersion(a, { ...a, provider: 'aws' })).toBe(false);
  });
});
