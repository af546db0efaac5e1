/**
 * A bounded pool of PKCS#11 sessions on one token, logged in once.
 *
 * - Login is per application and token in PKCS#11: the first session logs in (CKU_USER) and every
 *   later session shares that state, so the PIN is used once per (re)open.
 * - `use()` lends one session to one operation (a session runs one operation at a time); at most
 *   `size` are open. A native call the caller stopped waiting for (deadline) keeps its session and
 *   its slot until it returns, so a slow HSM cannot make the pool grow.
 * - After CKR_SESSION_HANDLE_INVALID, CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT (and the other
 *   codes in errors.ts `needsReopen`) all sessions are dropped and the next call reopens them,
 *   re-initialising the module first when the device went away.
 * - The PIN file is re-read at every login. If it changed, the new PIN is tried first; if the
 *   token rejects it, that is logged (naming the file, never the PIN), counted in
 *   kms_plugin_credential_reloads_total{outcome="error"}, and the previous PIN is used. A PIN file
 *   the token rejected is not tried again until it changes (failed logins can lock the PIN).
 */
import type { Logger } from '../../observability/logger.js';
import type { ProviderMetrics } from '../../observability/metrics.js';
import { PermissionDeniedError, UnavailableError, abortReasonToError, isAbortError } from '../errors.js';
import { Semaphore } from '../remote.js';
import { CKR, ckrCode, ckrName, needsReopen } from './errors.js';
import type { Pkcs11Module } from './module.js';
import { readPinFile } from './pin.js';

export type Handle = Buffer;

/** The token is not in its slot any more (or the module lost it): reopen from scratch. */
export class TokenGoneError extends UnavailableError {}

export interface SessionPoolOptions {
  module: Pkcs11Module;
  tokenLabel?: string;
  slot?: number;
  pinFile: string;
  size: number;
  logger: Logger;
  metrics?: ProviderMetrics;
  /** Read-write sessions (needed to create token objects, i.e. `rotate`). */
  readWrite?: boolean;
}

const PIN_ERRORS = new Set<number>([CKR.PIN_INCORRECT, CKR.PIN_INVALID, CKR.PIN_LEN_RANGE]);
const DEVICE_GONE = new Set<number>([
  CKR.DEVICE_REMOVED,
  CKR.TOKEN_NOT_PRESENT,
  CKR.TOKEN_NOT_RECOGNIZED,
  CKR.DEVICE_ERROR,
  CKR.CRYPTOKI_NOT_INITIALIZED,
  CKR.GENERAL_ERROR,
]);

export class SessionPool {
  /** "token "k8s-kms"" or "slot 3", for messages. */
  readonly token: string;
  private slot: Handle | undefined;
  private generation = -1;
  private idle: Handle[] = [];
  private readonly open = new Map<string, Handle>();
  private loggedIn = false;
  /** Bumped whenever the sessions (and the login) are dropped: object handles may be void after it. */
  epoch = 0;
  private pin: string | undefined;
  private pinStamp: string | undefined;
  private rejectedStamp: string | undefined;
  private readonly limit: Semaphore;
  private closed = false;
  /** Set when the device went away: the module generation to re-initialise from. */
  private reinitFrom: number | undefined;

  constructor(private readonly options: SessionPoolOptions) {
    this.token =
      options.tokenLabel !== undefined ? `token "${options.tokenLabel}"` : `slot ${String(options.slot)}`;
    this.limit = new Semaphore(options.size);
  }

  get module(): Pkcs11Module {
    return this.options.module;
  }

  /**
   * Runs `fn` with a logged-in session; call it inside a RemoteCaller attempt with the attempt's
   * signal. Waiting for a session ends when `signal` aborts; a native call already started is not
   * interruptible: RemoteCaller stops waiting for it, and it finishes in the background and only
   * then gives its session back.
   */
  async use<T>(
    signal: AbortSignal,
    what: string,
    fn: (session: Handle, slot: Handle) => Promise<T>,
  ): Promise<T> {
    if (this.closed) throw new UnavailableError(`${what}: the PKCS#11 provider is closed`);
    const release = await this.limit.acquire(signal).catch((err: unknown) => {
      throw isAbortError(err) || signal.aborted
        ? abortReasonToError(signal, `${what} (waiting for a session)`)
        : err;
    });
    return this.reinitIfNeeded()
      .then(() =>
        this.options.module.run(async (gen) => {
          if (signal.aborted) throw abortReasonToError(signal, what);
          if (gen !== this.generation) this.forget(gen);
          const session = this.checkout(gen);
          try {
            const value = await fn(session, this.slot as Handle);
            this.checkin(gen, session);
            return value;
          } catch (err) {
            if (needsReopen(err) || err instanceof TokenGoneError) this.broken(gen, err);
            else this.checkin(gen, session);
            throw err;
          }
        }),
      )
      .finally(release);
  }

  /** Closes every session (the login ends with the last one). */
  async close(): Promise<void> {
    this.closed = true;
    await this.options.module.run(async (gen) => {
      if (gen === this.generation) this.closeAll();
    });
  }

  /**
   * Throws TokenGoneError unless the configured token is still in `slot`. Some modules (SoftHSM)
   * answer searches on a removed token with an empty result rather than an error; call this
   * before concluding that a key object is gone.
   */
  assertToken(slot: Handle): void {
    let label: string;
    try {
      label = this.options.module.lib.C_GetTokenInfo(slot).label.replace(/[\s\0]+$/, '');
    } catch (err) {
      throw new TokenGoneError(
        `pkcs11: ${this.token} is not present any more (${ckrName(err)}); removed or disconnected?`,
        {
          retryable: true,
        },
      );
    }
    if (this.options.tokenLabel !== undefined && label !== this.options.tokenLabel)
      throw new TokenGoneError(`pkcs11: the slot of ${this.token} now holds token "${label}"`, {
        retryable: true,
      });
  }

  // ---- internals ------------------------------------------------------------------------------

  private async reinitIfNeeded(): Promise<void> {
    const from = this.reinitFrom;
    if (from === undefined) return;
    this.reinitFrom = undefined;
    await this.options.module.reinitialize(from);
  }

  private checkout(gen: number): Handle {
    const lib = this.options.module.lib;
    try {
      this.slot ??= this.locate();
      const reuse = this.loggedIn ? this.idle.pop() : undefined;
      if (reuse) return reuse;
      const flags =
        this.options.module.api.CKF_SERIAL_SESSION |
        (this.options.readWrite ? this.options.module.api.CKF_RW_SESSION : 0);
      const session = lib.C_OpenSession(this.slot, flags);
      this.open.set(session.toString('hex'), session);
      if (!this.loggedIn) {
        try {
          this.login(session);
        } catch (err) {
          this.drop(session);
          throw err;
        }
        this.loggedIn = true;
      }
      return session;
    } catch (err) {
      const code = ckrCode(err);
      if (
        err instanceof TokenGoneError ||
        (code !== undefined && (DEVICE_GONE.has(code) || needsReopen(err)))
      )
        this.broken(gen, err);
      throw err;
    }
  }

  private checkin(gen: number, session: Handle): void {
    if (gen === this.generation && this.open.has(session.toString('hex')) && !this.closed)
      this.idle.push(session);
    else if (this.closed && gen === this.generation) this.drop(session);
  }

  /** Finds the configured token's slot. */
  private locate(): Handle {
    const { lib } = this.options.module;
    const slots = lib.C_GetSlotList(true);
    if (this.options.tokenLabel !== undefined) {
      const seen: string[] = [];
      for (const s of slots) {
        const label = lib.C_GetTokenInfo(s).label.replace(/[\s\0]+$/, '');
        if (label === this.options.tokenLabel) return s;
        seen.push(JSON.stringify(label));
      }
      throw new TokenGoneError(
        `pkcs11: no token labelled "${this.options.tokenLabel}" in ${this.options.module.path} (tokens present: ${seen.join(', ') || 'none'}); is the HSM reachable and the token initialised?`,
        { retryable: true },
      );
    }
    const want = BigInt(this.options.slot ?? -1);
    for (const s of slots) if (handleValue(s) === want) return s;
    throw new TokenGoneError(
      `pkcs11: slot ${String(this.options.slot)} has no token in ${this.options.module.path} (slots with tokens: ${slots.map((s) => String(handleValue(s))).join(', ') || 'none'})`,
      { retryable: true },
    );
  }

  private login(session: Handle): void {
    const { pinFile } = this.options;
    const fresh = readPinFile(pinFile);
    const changed =
      this.pin !== undefined && fresh.stamp !== this.pinStamp && fresh.stamp !== this.rejectedStamp;
    if (changed && fresh.pin === this.pin) {
      this.pinStamp = fresh.stamp; // rewritten with the same PIN
    } else if (changed) {
      try {
        this.loginWith(session, fresh.pin);
        this.pin = fresh.pin;
        this.pinStamp = fresh.stamp;
        this.rejectedStamp = undefined;
        this.options.metrics?.credentialReloads.inc({ provider: 'pkcs11', outcome: 'ok' });
        this.options.logger.info(
          { provider: 'pkcs11', pinFile },
          'pkcs11 PIN file changed; logged in with the new PIN',
        );
        return;
      } catch (err) {
        const code = ckrCode(err);
        if (code === undefined || !PIN_ERRORS.has(code)) throw err;
        this.rejectedStamp = fresh.stamp;
        this.options.metrics?.credentialReloads.inc({ provider: 'pkcs11', outcome: 'error' });
        this.options.logger.error(
          { provider: 'pkcs11', pinFile, error: ckrName(err) },
          'pkcs11 PIN file changed but the token rejects the new PIN; still using the previous PIN. Fix the PIN file',
        );
      }
    }
    if (this.pin === undefined && fresh.stamp === this.rejectedStamp) throw this.pinRejected(undefined);
    const pin = this.pin ?? fresh.pin;
    try {
      this.loginWith(session, pin);
    } catch (err) {
      const code = ckrCode(err);
      if (
        code === undefined ||
        (!PIN_ERRORS.has(code) && code !== CKR.PIN_LOCKED && code !== CKR.PIN_EXPIRED)
      )
        throw err;
      if (this.pin === undefined) this.rejectedStamp = fresh.stamp;
      throw this.pinRejected(err);
    }
    if (this.pin === undefined) {
      this.pin = fresh.pin;
      this.pinStamp = fresh.stamp;
    }
  }

  private pinRejected(err: unknown): PermissionDeniedError {
    const why = err === undefined ? 'CKR_PIN_INCORRECT earlier' : ckrName(err);
    return new PermissionDeniedError(
      `pkcs11: ${this.token} rejected the PIN in ${this.options.pinFile} (${why}); put the token's user PIN in that file. ` +
        'The plugin does not try the same file again until it changes, because failed logins can lock the PIN',
    );
  }

  private loginWith(session: Handle, pin: string): void {
    const { lib, api } = this.options.module;
    try {
      lib.C_Login(session, api.CKU_USER, pin);
    } catch (err) {
      if (ckrCode(err) === CKR.USER_ALREADY_LOGGED_IN) return;
      throw err;
    }
  }

  /** Sessions are gone (or the token): drop them; re-initialise the module if the device went away. */
  private broken(gen: number, err: unknown): void {
    if (gen !== this.generation) return;
    const code = ckrCode(err);
    this.options.logger.warn(
      { provider: 'pkcs11', hsmToken: this.token, error: ckrName(err) },
      'pkcs11 sessions lost; reopening at the next call',
    );
    this.closeAll();
    // Re-initialised by the next call, before it looks for the token (not here: this runs inside
    // module.run, which the re-initialisation waits for).
    if (err instanceof TokenGoneError || (code !== undefined && DEVICE_GONE.has(code))) this.reinitFrom = gen;
  }

  /** The module was re-initialised: every handle of the old generation is void. */
  private forget(gen: number): void {
    this.generation = gen;
    this.epoch += 1;
    this.open.clear();
    this.idle = [];
    this.loggedIn = false;
    this.slot = undefined;
  }

  private closeAll(): void {
    this.epoch += 1;
    for (const s of this.open.values()) {
      try {
        this.options.module.lib.C_CloseSession(s);
      } catch {
        // already gone
      }
    }
    this.open.clear();
    this.idle = [];
    this.loggedIn = false;
    this.slot = undefined;
  }

  private drop(session: Handle): void {
    this.open.delete(session.toString('hex'));
    try {
      this.options.module.lib.C_CloseSession(session);
    } catch {
      // already gone
    }
  }
}

/** A CK_ULONG handle (pkcs11js gives native-endian buffers) as a bigint. */
export function handleValue(h: Handle): bigint {
  if (h.length >= 8) return h.readBigUInt64LE(0);
  return BigInt(h.readUInt32LE(0));
}
