/**
 * The KEK watcher: background prober, rotation watcher and the in-memory status snapshot.
 *
 * - Primes at start-up (first DEK), retrying with back-off until the KEK answers.
 * - Probes the provider every interval (jittered): reachability, key state, current version.
 * - Adopts a new remote version only after it was seen on N consecutive probes and a wrap with it
 *   succeeded; the envelope then switches key_id and DEK for new Encrypts in one assignment.
 * - Refuses a primary that moved back to an older version of the same key (never reuses a
 *   key_id): keeps the newer one, warns, counts it. A new keyIdGeneration moves on deliberately.
 *   Across restarts too: when the provider implements `newestVersion()`, every probe (and the
 *   prime) wraps with the newer of (remote primary, newest enabled version of that key), so a
 *   primary that went A → B → A keeps B on every replica and after every restart, with no state on
 *   disk. Providers without it (AWS, Vault: a new version is always the primary) get the
 *   in-memory refusal only.
 * - Rotates the write DEK when it is due by age or uses.
 * - Status answers from this snapshot only; it never calls the KMS.
 */
import { KeyDisabledError, UnavailableError, asPluginError, type PluginError } from '../errors.js';
import { timeoutSignal } from '../deadline.js';
import { describeRef, type Envelope, type DekRotationReason } from '../envelope/envelope.js';
import { type KekProvider, type KekRef, type KeyState, type KeyVersionInfo } from '../kek/types.js';
import { STOP_WRITES, keyStateOf } from '../kek/key-state.js';
import { KeyStateReporter } from './kek-state.js';
import type { OptionalCallIssue } from '../kek/optional.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { StatusAnswer, StatusSource } from '../server/server.js';

export interface ProbeSettings {
  intervalMs: number;
  jitter: number;
  timeoutMs: number;
  stableObservations: number;
  healthGraceMs: number;
}

export interface WatcherOptions {
  envelope: Envelope;
  provider: KekProvider;
  probe: ProbeSettings;
  statusVersion: 'v2' | 'v2beta1';
  logger: Logger;
  metrics?: Metrics;
  now?: () => number;
  random?: () => number;
}

export interface WatcherSnapshot {
  primed: boolean;
  keyId?: string;
  kek?: KekRef;
  kekState?: KeyState;
  kekStateDetail?: string;
  lastProbeAt?: number;
  lastGoodProbeAt?: number;
  lastError?: { kind: string; message: string };
  pendingVersion?: { ref: KekRef; observations: number };
  rollbackRefused?: KekRef;
  /** Optional remote calls the provider skips because they were refused (see src/kek/optional.ts). */
  optionalIssues?: OptionalCallIssue[];
}

export class KekWatcher implements StatusSource {
  private readonly now: () => number;
  private readonly random: () => number;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = false;
  private probing: Promise<void> | undefined;
  private lastProbeAt: number | undefined;
  private lastGoodProbeAt: number | undefined;
  private lastError: PluginError | undefined;
  private kekState: KeyState | undefined;
  private kekStateDetail: string | undefined;
  private candidate: { info: KeyVersionInfo; observations: number } | undefined;
  private rollbackRefused: KekRef | undefined;
  private primeFailures = 0;
  private dekRotation: Promise<void> | undefined;
  private readonly keyState: KeyStateReporter;

  constructor(private readonly options: WatcherOptions) {
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.keyState = new KeyStateReporter({
      logger: options.logger,
      metrics: options.metrics,
      role: 'primary',
      now: this.now,
    });
    options.envelope.onRotationDue((reason) => this.rotateDekSoon(reason));
    options.provider.onChangeHint?.(() => this.hint());
  }

  /** Starts priming and periodic probes (returns at once; the socket is already serving). */
  start(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    this.schedule(0);
  }

  /** Resolves when the first DEK is ready, or rejects after `timeoutMs`. */
  async waitUntilPrimed(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!this.options.envelope.currentKeyId()) {
      if (Date.now() > until) throw this.lastError ?? new UnavailableError('KEK not primed in time');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  stop(): void {
    this.stopped = true;
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Status: from memory only. */
  status(): StatusAnswer {
    const keyId = this.options.envelope.currentKeyId();
    if (!keyId) {
      const why = this.lastError
        ? `${this.lastError.kind}: ${this.lastError.message}`
        : 'waiting for the first KEK probe';
      return { ok: false, error: new UnavailableError(`not ready: no data key yet (${why})`) };
    }
    const blocked = this.options.envelope.writesBlocked;
    if (blocked) return { ok: false, error: blocked };
    return { ok: true, version: this.options.statusVersion, healthz: this.healthz(), keyId };
  }

  /** "ok", or a short reason (kube-apiserver shows it in its health check). */
  healthz(): string {
    if (this.kekState === 'unavailable')
      return `kek unavailable${this.kekStateDetail ? `: ${this.kekStateDetail.slice(0, 120)}` : ''}`;
    const last = this.lastGoodProbeAt;
    if (last === undefined) return 'no successful kek probe yet';
    const age = this.now() - last;
    if (age > this.options.probe.healthGraceMs) {
      const kind = this.lastError?.kind ?? 'unknown';
      return `kek probe failing for ${Math.round(age / 1000)}s (${kind})`;
    }
    return 'ok';
  }

  snapshot(): WatcherSnapshot {
    const info = this.options.envelope.writeInfo();
    return {
      primed: info !== undefined,
      keyId: info?.keyId,
      kek: info?.ref,
      kekState: this.kekState,
      kekStateDetail: this.kekStateDetail,
      lastProbeAt: this.lastProbeAt,
      lastGoodProbeAt: this.lastGoodProbeAt,
      lastError: this.lastError && { kind: this.lastError.kind, message: this.lastError.message },
      pendingVersion: this.candidate && {
        ref: this.candidate.info.ref,
        observations: this.candidate.observations,
      },
      rollbackRefused: this.rollbackRefused,
      optionalIssues: this.options.provider.optionalIssues?.(),
    };
  }

  /** Runs one probe now (coalesced with one already running). */
  probeNow(): Promise<void> {
    this.probing ??= this.probe().finally(() => {
      this.probing = undefined;
    });
    return this.probing;
  }

  private hint(): void {
    if (!this.running) return;
    this.schedule(100);
  }

  private schedule(delayMs: number): void {
    if (!this.running) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.probeNow().then(() => this.schedule(this.nextDelay()));
    }, delayMs);
    this.timer.unref?.();
  }

  private nextDelay(): number {
    const { intervalMs, jitter } = this.options.probe;
    if (!this.options.envelope.currentKeyId()) {
      // Not primed: back off from 250 ms up to the interval.
      return Math.min(intervalMs, 250 * 2 ** Math.min(this.primeFailures, 8));
    }
    if (this.candidate) return Math.min(intervalMs, 1000); // confirm a new version promptly
    return Math.max(1, Math.round(intervalMs * (1 - jitter / 2 + this.random() * jitter)));
  }

  /**
   * The version new DEKs should be wrapped with: the remote primary, or the newest enabled version
   * of the same key when the primary is older than it (`olderPrimary` is then that primary).
   * Newest is asked first: a rotation landing between the two calls then looks like a newer
   * primary (adopted normally), never like a rollback.
   */
  private async resolveTarget(
    signal: AbortSignal,
  ): Promise<{ info: KeyVersionInfo; olderPrimary?: KeyVersionInfo }> {
    const { provider, envelope } = this.options;
    let primary = await provider.currentVersion(signal);
    // Listing versions costs a remote call, so ask only when it can matter: before the first DEK,
    // or when the primary is not the version already in use (a rotation, or a rollback). In steady
    // state a probe is one remote call.
    const adopted = envelope.currentVersion();
    const consult =
      provider.newestVersion !== undefined && (!adopted || !sameVersion(adopted.ref, primary.ref));
    const newest = consult && provider.newestVersion ? await provider.newestVersion(signal) : undefined;
    if (newest && newest.ordinal > primary.ordinal && !sameVersion(newest.ref, primary.ref)) {
      // A rotation may have landed between the two calls: look at the primary once more before
      // calling it a rollback.
      primary = await provider.currentVersion(signal);
    }
    if (
      newest &&
      newest.state === 'enabled' &&
      newest.ref.provider === primary.ref.provider &&
      newest.ref.key === primary.ref.key &&
      newest.ordinal > primary.ordinal
    ) {
      return { info: newest, olderPrimary: primary };
    }
    return { info: primary };
  }

  private async probe(): Promise<void> {
    const { envelope, logger, metrics } = this.options;
    const signal = timeoutSignal(this.options.probe.timeoutMs);
    this.lastProbeAt = this.now();
    let info: KeyVersionInfo;
    let olderPrimary: KeyVersionInfo | undefined;
    try {
      ({ info, olderPrimary } = await this.resolveTarget(signal));
    } catch (err) {
      this.probeFailed(asPluginError(err));
      return;
    }
    try {
      const current = envelope.currentVersion();
      if (!current) {
        await this.prime(info, olderPrimary, signal);
      } else {
        await this.observe(current, info, olderPrimary, signal);
      }
      this.lastGoodProbeAt = this.now();
      this.lastError = undefined;
      this.primeFailures = 0;
      metrics?.probes.inc({ outcome: 'ok' });
      metrics?.lastGoodProbe.set(this.lastGoodProbeAt / 1000);
    } catch (err) {
      this.probeFailed(asPluginError(err));
      return;
    }
    envelope.sweep();
    const due = envelope.rotationDue();
    if (due) this.rotateDekSoon(due);
    this.updateGauges();
    logger.debug({ keyId: envelope.currentKeyId(), kekState: this.kekState }, 'kek probe ok');
  }

  private async prime(
    info: KeyVersionInfo,
    olderPrimary: KeyVersionInfo | undefined,
    signal: AbortSignal,
  ): Promise<void> {
    this.setKekState(info);
    this.noteRollback(olderPrimary, info.ref);
    if (info.state !== 'enabled') {
      throw new KeyDisabledError(
        `current KEK version ${describeRef(info.ref)} is ${info.state}${info.detail ? ` (${info.detail})` : ''}`,
      );
    }
    const keyId = await this.options.envelope.adopt(info, 'startup', signal);
    this.options.metrics?.keyIdInfo.set({ key_id: keyId, provider: info.ref.provider }, 1);
    this.options.metrics?.keyIdLastChange.set(this.now() / 1000);
  }

  private async observe(
    current: KeyVersionInfo,
    info: KeyVersionInfo,
    olderPrimary: KeyVersionInfo | undefined,
    signal: AbortSignal,
  ): Promise<void> {
    const { logger, metrics, envelope } = this.options;
    // The state of the version the KMS would use now decides whether writing is right, whether or
    // not it is the adopted one (a primary that became DISABLED / DESTROY_SCHEDULED stops writes).
    this.setKekState(info);
    if (sameVersion(current.ref, info.ref)) {
      this.candidate = undefined;
      this.noteRollback(olderPrimary, current.ref);
      return;
    }
    if (
      info.ref.provider === current.ref.provider &&
      info.ref.key === current.ref.key &&
      info.ordinal < current.ordinal
    ) {
      // The version to wrap with went back (no newestVersion(), or the newer one vanished).
      this.noteRollback(info, current.ref);
      this.candidate = undefined;
      return;
    }
    this.noteRollback(olderPrimary, info.ref);
    if (info.state !== 'enabled') {
      logger.warn(
        { version: describeRef(info.ref), state: info.state, detail: info.detail },
        'new KEK version is not enabled; not adopting it',
      );
      this.candidate = undefined;
      return;
    }
    if (this.candidate && sameVersion(this.candidate.info.ref, info.ref)) this.candidate.observations += 1;
    else this.candidate = { info, observations: 1 };
    const needed = this.options.probe.stableObservations;
    if (this.candidate.observations < needed) {
      logger.info(
        { version: describeRef(info.ref), observations: this.candidate.observations, needed },
        'new KEK version seen; waiting until it is stable',
      );
      return;
    }
    const previous = envelope.currentKeyId();
    const keyId = await envelope.adopt(info, 'kek_change', signal); // wraps with it first: adopted only if that works
    this.candidate = undefined;
    this.setKekState(info);
    metrics?.kekRotations.inc({ provider: info.ref.provider });
    if (previous) metrics?.keyIdInfo.remove({ key_id: previous, provider: current.ref.provider });
    metrics?.keyIdInfo.set({ key_id: keyId, provider: info.ref.provider }, 1);
    metrics?.keyIdLastChange.set(this.now() / 1000);
  }

  /**
   * Records (or clears, when `older` is undefined) a refused rollback: the remote primary points at
   * `older` while `kept` is newer. Warns once per distinct older version; counts every probe.
   */
  private noteRollback(older: KeyVersionInfo | undefined, kept: KekRef): void {
    const { logger, metrics, envelope } = this.options;
    if (!older) {
      if (this.rollbackRefused) {
        logger.info(
          { remotePrimary: describeRef(kept) },
          'remote primary is the newest key version again; rollback warning cleared',
        );
        metrics?.rollbackActive.set({ provider: this.rollbackRefused.provider }, 0);
      }
      this.rollbackRefused = undefined;
      return;
    }
    if (!this.rollbackRefused || !sameVersion(this.rollbackRefused, older.ref)) {
      logger.warn(
        {
          kept: describeRef(kept),
          remotePrimary: describeRef(older.ref),
          keyId: envelope.currentKeyId(),
        },
        'remote primary points at an OLDER key version than the newest one; keeping the newer version ' +
          '(key_ids are never reused). Make the newest version primary again, or rotate to a new version. ' +
          'If you disable or delete the newer version so that an older one becomes current, raise ' +
          'keyIdGeneration in the config first, so the older version gets a fresh key_id',
      );
    }
    this.rollbackRefused = older.ref;
    metrics?.rollbackRefusals.inc({ provider: older.ref.provider });
    metrics?.rollbackActive.set({ provider: older.ref.provider }, 1);
  }

  private probeFailed(err: PluginError): void {
    const { logger, metrics } = this.options;
    this.lastError = err;
    metrics?.probes.inc({ outcome: err.kind });
    if (!this.options.envelope.currentKeyId()) {
      this.primeFailures += 1;
      logger.error(
        { err, attempt: this.primeFailures },
        'KEK probe failed before the first data key was ready; retrying',
      );
    } else {
      logger.warn({ err }, 'KEK probe failed; serving from the current data key');
    }
    // "The key is unusable" said with an error (AWS DisabledException / NotFoundException, GCP no
    // primary, Azure/Vault 404, ...) is the same signal as a state field: it stops writes now.
    const state = keyStateOf(err) ?? (err.kind === 'key_disabled' ? 'disabled' : undefined);
    if (state) {
      const ref = this.options.envelope.currentVersion()?.ref;
      this.setKekState({
        ref: ref ?? {
          provider: this.options.provider.kind,
          key: this.options.provider.description,
          version: '?',
        },
        state,
        detail: err.message,
      });
    }
    this.updateGauges();
  }

  private setKekState(info: Pick<KeyVersionInfo, 'ref' | 'state' | 'detail'>): void {
    this.kekState = info.state;
    this.kekStateDetail = info.detail;
    // The metric and the log line: one owner, one policy (src/health/kek-state.ts).
    this.keyState.report(info);
    // Status and Encrypt refuse together: no new seed is sealed under a KEK known to be going away.
    this.options.envelope.blockWrites(
      STOP_WRITES.has(info.state)
        ? new KeyDisabledError(
            `KEK ${info.state.replace(/_/g, ' ')}${info.detail ? ` (${info.detail.slice(0, 400)})` : ''}: refusing new writes; re-enable the key or configure another`,
          )
        : undefined,
    );
  }

  private rotateDekSoon(reason: DekRotationReason): void {
    if (this.dekRotation || this.stopped) return;
    const signal = timeoutSignal(this.options.probe.timeoutMs);
    this.dekRotation = this.options.envelope
      .rotateDek(reason, signal)
      .then(() => undefined)
      .catch((err: unknown) => {
        this.options.logger.warn(
          { err: asPluginError(err), reason },
          'write DEK rotation failed; keeping the current DEK and retrying on the next probe',
        );
      })
      .finally(() => {
        this.dekRotation = undefined;
      });
  }

  private updateGauges(): void {
    const ok = this.status();
    this.options.metrics?.ready.set(this.options.envelope.currentKeyId() ? 1 : 0);
    this.options.metrics?.healthy.set(ok.ok && ok.healthz === 'ok' ? 1 : 0);
  }

  /** What kms_plugin_healthy / kms_plugin_ready report at scrape time. */
  gaugeState(): { healthy: boolean; ready: boolean } {
    const s = this.status();
    return { healthy: s.ok && s.healthz === 'ok', ready: this.options.envelope.currentKeyId() !== undefined };
  }
}

export function sameVersion(a: KekRef, b: KekRef): boolean {
  return (
    a.provider === b.provider &&
    a.key === b.key &&
    a.version === b.version &&
    (a.unique ?? '') === (b.unique ?? '')
  );
}
