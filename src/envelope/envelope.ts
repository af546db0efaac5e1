/**
 * The envelope: plugin-generated AES-256 DEKs wrapped by the KEK provider.
 *
 * - Encrypt seals the apiserver's seed under the current write DEK. Synchronous, no remote call.
 * - Decrypt finds the DEK named by the annotations (write DEK, cache, or one coalesced remote
 *   unwrap), then opens the seed with the AAD that binds key_id and annotations. Fails closed.
 * - The write state (key_id + DEK + wrapped DEK + KEK reference) is one immutable object swapped
 *   by a single assignment, so Status and Encrypt switch key_id at the same instant.
 *
 * Pure logic plus the provider interface: no SDKs, no gRPC, no timers (the health module drives
 * rotation by calling adopt() / rotateDek()).
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  CorruptError,
  InternalError,
  InvalidInputError,
  UnavailableError,
  UnknownKeyError,
  abortReasonToError,
  asPluginError,
  type PluginError,
} from '../errors.js';
import type { KekProvider, KekRef, KeyVersionInfo } from '../kek/types.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import {
  ANNOTATION_DEK,
  ANNOTATION_KEK,
  canonicalKek,
  decodeAnnotations,
  encodeAnnotations,
  type EnvelopeAnnotations,
} from './annotations.js';
import { DekCache } from './cache.js';
import { deriveKeyId } from './keyid.js';
import { SingleFlight } from './singleflight.js';
import {
  MAX_CIPHERTEXT_BYTES,
  OVERHEAD_BYTES,
  dekCommitment,
  open,
  parseCiphertext,
  seal,
  verifyCommitment,
  type AadParts,
  type ParsedCiphertext,
} from './wire.js';

export const DEK_BYTES = 32;
/** Random 96-bit nonces: stay far below the 2^32 messages-per-key bound whatever maxUses says. */
const HARD_MAX_USES = 2 ** 31;

export interface EnvelopeOptions {
  /** Wraps new DEKs; also unwraps. */
  primary: KekProvider;
  /** Unwrap only (migrations). Tried in order after the primary. */
  decryptOnly?: KekProvider[];
  keyIdGeneration: number;
  dekMaxAgeMs: number;
  dekMaxUses: number;
  cacheSize: number;
  cacheTtlMs: number;
  maxPlaintextBytes: number;
  logger: Logger;
  metrics?: Metrics;
  now?: () => number;
}

export type DekRotationReason = 'startup' | 'age' | 'uses' | 'kek_change' | 'generation' | 'manual';

/** The state new Encrypts use. Immutable once published, except the use counter. */
export interface WriteState {
  readonly keyId: string;
  readonly version: KeyVersionInfo;
  /** The ref the KMS reported for the wrap (may name the exact version more precisely). */
  readonly ref: KekRef;
  readonly dekId: string;
  readonly createdAt: number;
  uses: number;
  readonly dek: Buffer;
  readonly annotations: Readonly<Record<string, Buffer>>;
  readonly kekBytes: Buffer;
  readonly wrapped: Buffer;
  readonly wrappedHash: Buffer;
  /** The DEK commitment sealed into every format-2 ciphertext (see wire.ts). */
  readonly commit: Buffer;
  /** The decoded annotations last found to name this DEK (saves comparing the wrapped DEK again). */
  matched?: DecodedEnvelope;
}

/** What one shared unwrap hands its waiters. */
interface UnwrapResult {
  dek: Buffer;
  /**
   * True when the DEK was verified before it was cached (commitment, or opening the first
   * requester's object). False only for a format-1 DEK that the KMS returned identically twice
   * but that did not open the first requester's object: not cached; each waiter's own open decides.
   */
  verified: boolean;
}

export interface EncryptResult {
  ciphertext: Buffer;
  keyId: string;
  annotations: Record<string, Buffer>;
}

/** Public, non-secret facts about the write state (for Status, logs, inspect). */
export interface WriteInfo {
  keyId: string;
  ref: KekRef;
  dekId: string;
  createdAt: number;
  uses: number;
}

/** A short, non-secret id for a wrapped DEK: the first 16 bytes of its SHA-256, hex. */
export function dekIdOf(wrapped: Buffer): string {
  return createHash('sha256').update(wrapped).digest('hex').slice(0, 32);
}

interface DecodedEnvelope extends EnvelopeAnnotations {
  keyId: string;
  wrappedHash: Buffer;
  dekId: string;
}

/** True when `o` has exactly two own enumerable keys (without allocating Object.keys' array). */
function hasTwoKeys(o: Record<string, unknown> | undefined): boolean {
  let n = 0;
  for (const k in o) if (Object.hasOwn(o, k) && ++n > 2) return false;
  return n === 2;
}

/** Decoded annotation sets remembered (one per DEK in use; cleared wholesale when full). */
const DECODED_MEMO_SIZE = 4096;

export class Envelope {
  private write: WriteState | undefined;
  private readonly decoded = new Map<string, DecodedEnvelope>();
  private readonly cache: DekCache;
  private readonly unwraps = new SingleFlight<string, UnwrapResult>();
  /** Set while the KEK is known to be unusable: Encrypt refuses with it (decrypts go on). */
  private writeBlock: PluginError | undefined;
  private readonly providers: KekProvider[];
  private readonly now: () => number;
  private closed = false;
  private rotationListener: ((reason: DekRotationReason) => void) | undefined;
  private rotationRequested = false;

  constructor(private readonly options: EnvelopeOptions) {
    this.providers = [options.primary, ...(options.decryptOnly ?? [])];
    this.now = options.now ?? Date.now;
    this.cache = new DekCache({
      maxEntries: options.cacheSize,
      ttlMs: options.cacheTtlMs,
      now: this.now,
      onEvent: (event, size) => {
        // A hit (every Decrypt of an older object) changes no size: counted in plain numbers.
        if (event === 'hit') return options.metrics?.countDekCacheHit();
        options.metrics?.dekCacheSize.set(size);
        if (event !== 'clear') options.metrics?.dekCacheEvents.inc({ event });
      },
    });
  }

  get keyIdGeneration(): number {
    return this.options.keyIdGeneration;
  }

  /** The key_id new Encrypts use; undefined until the first DEK is ready. */
  currentKeyId(): string | undefined {
    return this.write?.keyId;
  }

  writeInfo(): WriteInfo | undefined {
    const w = this.write;
    return w && { keyId: w.keyId, ref: w.ref, dekId: w.dekId, createdAt: w.createdAt, uses: w.uses };
  }

  /** The KEK version the write DEK is wrapped under. */
  currentVersion(): KeyVersionInfo | undefined {
    return this.write?.version;
  }

  /** The key_id a given KEK version would get. */
  keyIdFor(ref: KekRef): string {
    return deriveKeyId(ref, this.options.keyIdGeneration);
  }

  /**
   * Refuses (or, with undefined, allows again) new Encrypts: set by the watcher while the KEK is
   * known to be unusable (disabled, scheduled for deletion, destroyed, not found), so no new seed
   * is sealed under a DEK whose KEK is going away. Decrypts are not affected.
   */
  blockWrites(reason: PluginError | undefined): void {
    this.writeBlock = reason;
  }

  /** Why Encrypt is refused right now, if it is. */
  get writesBlocked(): PluginError | undefined {
    return this.writeBlock;
  }

  /** Called (once per due period) when the write DEK is due for rotation by age or uses. */
  onRotationDue(listener: (reason: DekRotationReason) => void): void {
    this.rotationListener = listener;
  }

  /** Why the write DEK should be replaced now, if it should. */
  rotationDue(): DekRotationReason | undefined {
    const w = this.write;
    if (!w) return undefined;
    if (w.uses >= this.options.dekMaxUses) return 'uses';
    if (this.now() - w.createdAt >= this.options.dekMaxAgeMs) return 'age';
    return undefined;
  }

  /**
   * Generates a DEK, wraps it with exactly `version`, and publishes it as the write state in one
   * assignment. If wrapping fails nothing changes. Returns the new key_id.
   */
  async adopt(version: KeyVersionInfo, reason: DekRotationReason, signal: AbortSignal): Promise<string> {
    this.assertOpen();
    const dek = randomBytes(DEK_BYTES);
    let wrapped: Buffer;
    let ref: KekRef;
    try {
      const result = await this.options.primary.wrap(dek, version, signal);
      wrapped = Buffer.from(result.wrapped);
      ref = result.ref;
    } catch (err) {
      dek.fill(0);
      throw asPluginError(err);
    }
    if (this.closed) {
      dek.fill(0);
      throw new UnavailableError('shutting down');
    }
    if (wrapped.length === 0) {
      dek.fill(0);
      throw new CorruptError(`${version.ref.provider}: the KMS returned an empty wrapped key`);
    }
    // key_id names the version the KMS says it used; the watcher adopted `version` and compares.
    const generation = this.options.keyIdGeneration;
    const keyId = deriveKeyId(ref, generation);
    const kekBytes = canonicalKek(ref, generation);
    const wrappedHash = createHash('sha256').update(wrapped).digest();
    const state: WriteState = {
      keyId,
      version: { ...version, ref },
      ref,
      dekId: dekIdOf(wrapped),
      createdAt: this.now(),
      uses: 0,
      dek,
      annotations: encodeAnnotations(ref, generation, wrapped),
      kekBytes,
      wrapped,
      wrappedHash,
      commit: dekCommitment(dek, wrappedHash),
    };
    const previous = this.write;
    this.write = state; // the switch: Status and Encrypt see the new key_id from here on
    this.rotationRequested = false;
    if (previous) this.cache.set(previous.dekId, previous.dek); // hand the old DEK to the cache for reads
    this.options.metrics?.dekRotations.inc({ reason });
    this.options.metrics?.dekAgeSeconds.set(0);
    this.options.logger.info(
      { keyId, previousKeyId: previous?.keyId, dekId: state.dekId, kek: describeRef(ref), reason },
      previous && previous.keyId !== keyId ? 'switched key_id to a new KEK version' : 'new write DEK ready',
    );
    return keyId;
  }

  /** A new DEK under the same KEK version (age / uses policy). */
  async rotateDek(reason: DekRotationReason, signal: AbortSignal): Promise<string> {
    const w = this.write;
    if (!w) throw new UnavailableError('no write DEK yet');
    return this.adopt(w.version, reason, signal);
  }

  /** Seals `plaintext` under the write DEK. No remote call. */
  encrypt(plaintext: Uint8Array): EncryptResult {
    this.assertOpen();
    const w = this.write;
    if (!w)
      throw new UnavailableError(
        'not ready: no data key yet (the KEK has not been reachable since start-up)',
      );
    if (this.writeBlock) throw this.writeBlock;
    if (plaintext.length === 0) throw new InvalidInputError('plaintext is empty');
    if (plaintext.length > this.options.maxPlaintextBytes) {
      throw new InvalidInputError(
        `plaintext is ${plaintext.length} bytes; the maximum is ${this.options.maxPlaintextBytes} (kube-apiserver sends 32)`,
      );
    }
    if (w.uses >= HARD_MAX_USES)
      throw new UnavailableError('write DEK exhausted and no replacement could be made yet');
    w.uses += 1;
    const ciphertext = seal(w.dek, plaintext, {
      keyId: w.keyId,
      kekBytes: w.kekBytes,
      wrapped: w.wrapped,
      wrappedHash: w.wrappedHash,
      commit: w.commit,
    });
    if (ciphertext.length > MAX_CIPHERTEXT_BYTES) {
      throw new InternalError(
        `ciphertext would be ${ciphertext.length} bytes, over the ${MAX_CIPHERTEXT_BYTES}-byte limit`,
      );
    }
    const due = this.rotationDue();
    if (due && !this.rotationRequested) {
      this.rotationRequested = true;
      this.rotationListener?.(due);
    }
    const annotations: Record<string, Buffer> = {};
    for (const [k, v] of Object.entries(w.annotations)) annotations[k] = Buffer.from(v);
    return { ciphertext, keyId: w.keyId, annotations };
  }

  /**
   * decrypt() without a promise when the DEK is in memory (the write DEK or the cache): the
   * plaintext, or undefined when a remote unwrap is needed (then call decrypt()). Throws what
   * decrypt() rejects with. The server calls this first, so a Decrypt served from memory costs no
   * promise, closure or microtask.
   */
  decryptInMemory(
    ciphertext: Uint8Array,
    keyId: string,
    annotations: Record<string, Uint8Array> | undefined,
  ): Buffer | undefined {
    const { parsed, env, parts } = this.prepareDecrypt(ciphertext, keyId, annotations);
    const dek = this.dekInMemory(env, false);
    if (!dek) return undefined;
    const plaintext = open(dek, parsed, parts);
    this.countDecrypt(keyId === this.write?.keyId ? 'current' : 'older');
    return plaintext;
  }

  /**
   * The DEK of a decoded envelope if it is in memory: the write DEK or a cached one. With
   * `countMiss` false a DEK not in memory counts no cache miss (decrypt() counts it after).
   */
  private dekInMemory(env: DecodedEnvelope, countMiss = true): Buffer | undefined {
    const w = this.write;
    if (w) {
      if (w.matched === env) return w.dek;
      if (w.dekId === env.dekId && w.wrapped.equals(env.wrapped)) {
        w.matched = env;
        return w.dek;
      }
    }
    return this.cache.get(env.dekId, countMiss);
  }

  /** Validation, parsing and annotation decoding shared by decrypt() and decryptInMemory(). */
  private prepareDecrypt(
    ciphertext: Uint8Array,
    keyId: string,
    annotations: Record<string, Uint8Array> | undefined,
  ): { parsed: ParsedCiphertext; env: DecodedEnvelope; parts: AadParts } {
    this.assertOpen();
    if (ciphertext.length > MAX_CIPHERTEXT_BYTES) {
      throw new InvalidInputError(
        `ciphertext is ${ciphertext.length} bytes; the maximum is ${MAX_CIPHERTEXT_BYTES}`,
      );
    }
    if (ciphertext.length < OVERHEAD_BYTES + 1) {
      throw new InvalidInputError(`ciphertext is ${ciphertext.length} bytes, too short to be ours`);
    }
    const parsed = parseCiphertext(ciphertext);
    const env = this.decodeEnvelope(annotations);
    if (keyId !== env.keyId) {
      throw new UnknownKeyError(
        'key_id does not match the KEK named in the annotations: not a key_id this plugin issued for this ciphertext',
      );
    }
    const parts = { keyId, kekBytes: env.kekBytes, wrapped: env.wrapped, wrappedHash: env.wrappedHash };
    return { parsed, env, parts };
  }

  /** Opens a ciphertext made by encrypt() (here or on any replica, before any restart). Fails closed. */
  async decrypt(
    ciphertext: Uint8Array,
    keyId: string,
    annotations: Record<string, Uint8Array> | undefined,
    signal: AbortSignal | (() => AbortSignal),
  ): Promise<Buffer> {
    const { parsed, env, parts } = this.prepareDecrypt(ciphertext, keyId, annotations);
    const inMemory = this.dekInMemory(env);
    let plaintext: Buffer;
    if (inMemory) {
      plaintext = open(inMemory, parsed, parts);
    } else {
      // Only a cache miss needs a deadline signal (callers may pass a lazy factory).
      const got = await this.unwrapShared(
        env,
        parsed,
        parts,
        typeof signal === 'function' ? signal() : signal,
      );
      plaintext = open(got.dek, parsed, parts);
      // A format-1 DEK the first requester could not verify is cached once an object opens with it.
      if (!got.verified && !this.closed) this.cache.set(env.dekId, Buffer.from(got.dek));
    }
    this.countDecrypt(keyId === this.write?.keyId ? 'current' : 'older');
    return plaintext;
  }

  private countDecrypt(key: 'current' | 'older'): void {
    this.options.metrics?.countDecrypt(key);
  }

  /** The annotations decoded last, compared byte for byte before building a memo key. */
  private lastDecoded: { kek: Buffer; dek: Buffer; decoded: DecodedEnvelope } | undefined;

  /**
   * Strictly decodes the annotations, remembering the result: every object under one DEK carries
   * the same annotations, so the JSON parse, key_id derivation and wrapped-DEK hash are done once
   * per DEK, not once per Decrypt. The memo holds only public data (no keys) and is bounded.
   */
  private decodeEnvelope(annotations: Record<string, Uint8Array> | undefined): DecodedEnvelope {
    const kek = annotations?.[ANNOTATION_KEK];
    const dek = annotations?.[ANNOTATION_DEK];
    const last = this.lastDecoded;
    if (last && kek && dek && last.kek.equals(kek) && last.dek.equals(dek) && hasTwoKeys(annotations))
      return last.decoded;
    const memoKey =
      kek && dek && hasTwoKeys(annotations)
        ? `${Buffer.from(kek.buffer, kek.byteOffset, kek.byteLength).toString('latin1')}\0${Buffer.from(dek.buffer, dek.byteOffset, dek.byteLength).toString('base64')}`
        : undefined;
    const hit = memoKey === undefined ? undefined : this.decoded.get(memoKey);
    if (hit) {
      this.lastDecoded = { kek: Buffer.from(kek!), dek: Buffer.from(dek!), decoded: hit };
      return hit;
    }
    const env = decodeAnnotations(annotations); // throws on anything not exactly ours
    const wrappedHash = createHash('sha256').update(env.wrapped).digest();
    const decoded: DecodedEnvelope = {
      ...env,
      keyId: deriveKeyId(env.ref, env.generation),
      wrappedHash,
      dekId: wrappedHash.subarray(0, 16).toString('hex'),
    };
    if (memoKey !== undefined) {
      if (this.decoded.size >= DECODED_MEMO_SIZE) this.decoded.clear();
      this.decoded.set(memoKey, decoded);
      this.lastDecoded = { kek: Buffer.from(kek!), dek: Buffer.from(dek!), decoded };
    }
    return decoded;
  }

  /**
   * Unwraps through the provider that owns the DEK, sharing one remote call among concurrent
   * callers, and verifies the DEK before it is cached or handed to any waiter:
   * - format 2: the commitment stored with the object must match the DEK;
   * - format 1 (no commitment): the first requester's object must open with it.
   * If the check fails, the KMS is asked once more. Different bytes: the KMS returned a wrong DEK;
   * both are zeroed, nothing is cached, the call fails UNAVAILABLE (a KMS fault, logged and counted
   * in kms_plugin_dek_verification_failures_total) and the next Decrypt unwraps again. The same
   * bytes: the object itself fails (altered); the DEK is handed on unverified and NOT cached, and
   * the open reports INVALID_ARGUMENT. A waiter whose own object opens with it caches it then.
   */
  private async unwrapShared(
    env: DecodedEnvelope,
    parsed: ParsedCiphertext,
    parts: AadParts,
    signal: AbortSignal,
  ): Promise<UnwrapResult> {
    const { ref, wrapped, dekId } = env;
    const provider = this.providers.find((p) => p.canUnwrap(ref));
    if (!provider) {
      throw new UnknownKeyError(
        `no configured KEK can unwrap this DEK (it names ${ref.provider} key ${truncate(ref.key)} version ${truncate(ref.version)}): ` +
          `add that key as the provider or under decryptOnly`,
      );
    }
    // Objects that carry a different commitment must not share (or fail) each other's verification.
    const flightKey = parsed.commit ? `${dekId}:${parsed.commit.toString('hex')}` : dekId;
    try {
      return await this.unwraps.do(
        flightKey,
        signal,
        async (shared) => {
          const unwrapOnce = async (): Promise<Buffer> => {
            const dek = Buffer.from(await provider.unwrap(wrapped, ref, shared));
            if (dek.length !== DEK_BYTES) {
              dek.fill(0);
              this.verificationFailed(ref, dekId, 'length');
              throw new CorruptError(
                `${ref.provider}: the KMS returned an unwrapped DEK of the wrong length; not cached, the next Decrypt unwraps again`,
              );
            }
            if (this.closed) {
              dek.fill(0);
              throw new UnavailableError('shutting down');
            }
            return dek;
          };
          const check = parsed.commit ? 'commitment' : 'open';
          const passes = (candidate: Buffer): boolean =>
            parsed.commit
              ? verifyCommitment(candidate, env.wrappedHash, parsed.commit)
              : opens(candidate, parsed, parts);
          const dek = await unwrapOnce();
          const verified = passes(dek);
          if (!verified) {
            // The DEK or the object is wrong. Ask the KMS once more: different bytes mean the KMS
            // returned a wrong DEK (a KMS fault); the same bytes mean the object is what fails.
            const again = await unwrapOnce().catch((err: unknown) => {
              dek.fill(0);
              throw err;
            });
            const same = again.equals(dek);
            again.fill(0);
            if (!same) {
              dek.fill(0);
              this.verificationFailed(ref, dekId, check);
              throw new UnavailableError(
                `${ref.provider}: the KMS returned a DEK that failed verification (${check === 'commitment' ? 'commitment mismatch' : 'it did not open the object'}) and a different one when asked again; nothing cached, the next Decrypt unwraps again`,
              );
            }
          }
          if (this.closed) {
            dek.fill(0);
            throw new UnavailableError('shutting down');
          }
          if (verified) this.cache.set(dekId, Buffer.from(dek));
          // Waiters use `dek` synchronously when they resume (microtasks); zero it afterwards.
          setImmediate(() => dek.fill(0));
          return { dek, verified };
        },
        () => this.options.metrics?.unwrapsCoalesced.inc(),
      );
    } catch (err) {
      if (signal.aborted) throw abortReasonToError(signal, 'decrypt');
      throw asPluginError(err);
    }
  }

  private verificationFailed(ref: KekRef, dekId: string, check: 'commitment' | 'open' | 'length'): void {
    this.options.metrics?.dekVerificationFailures.inc({ provider: ref.provider, check });
    this.options.logger.error(
      { provider: ref.provider, kek: describeRef(ref), dekId, check },
      'KMS returned a DEK that failed verification; dropped (not cached), the next Decrypt unwraps again',
    );
  }

  /** Drops expired cache entries; called periodically by the owner. */
  sweep(): void {
    this.cache.sweep();
    const w = this.write;
    if (w) this.options.metrics?.dekAgeSeconds.set((this.now() - w.createdAt) / 1000);
  }

  /** Zeroes every key in memory and refuses further work. */
  close(): void {
    this.closed = true;
    this.cache.clear();
    if (this.write) this.write.dek.fill(0);
    this.write = undefined;
  }

  get cacheSize(): number {
    return this.cache.size;
  }

  private assertOpen(): void {
    if (this.closed) throw new UnavailableError('shutting down');
  }
}

/** True when `dek` opens `parsed` (an authenticated open: never wrong bytes). */
function opens(dek: Buffer, parsed: ParsedCiphertext, parts: AadParts): boolean {
  try {
    open(dek, parsed, parts).fill(0);
    return true;
  } catch {
    return false;
  }
}

export function describeRef(ref: KekRef): string {
  return `${ref.provider}:${truncate(ref.key, 200)}@${truncate(ref.version, 100)}`;
}

function truncate(s: string, n = 120): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}
