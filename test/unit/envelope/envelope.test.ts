import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { Envelope, dekIdOf, type EnvelopeOptions } from '../../../src/envelope/envelope.js';
import { ANNOTATION_DEK, ANNOTATION_KEK, annotationErrors } from '../../../src/envelope/annotations.js';
import { deriveKeyId } from '../../../src/envelope/keyid.js';
import {
  CorruptError,
  InvalidInputError,
  KeyDisabledError,
  PluginError,
  UnauthenticatedError,
  UnavailableError,
  UnknownKeyError,
} from '../../../src/errors.js';
import type {
  KekProvider,
  KekRef,
  KeyVersionInfo,
  ProviderKind,
  WrapResult,
} from '../../../src/kek/types.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { createLogger, silentLogger } from '../../../src/observability/logger.js';
import { FORMAT_V1, FORMAT_V2, OVERHEAD_V2_BYTES, seal } from '../../../src/envelope/wire.js';

/** In-memory KEK: AES-256-GCM wrap per version; counts calls; controllable delay and failure. */
class FakeKek implements KekProvider {
  readonly description: string;
  readonly versions = new Map<string, Buffer>();
  primary = '1';
  calls = { currentVersion: 0, wrap: 0, unwrap: 0 };
  delayMs = 0;
  failWrap: Error | undefined;
  failUnwrap: Error | undefined;
  /** Replaces what unwrap returns (e.g. a wrong-length key). */
  unwrapResult: Buffer | undefined;
  /** The next this-many unwrap answers come back with one byte flipped (a corrupted response). */
  corruptNext = 0;
  /** Every DEK buffer handed to wrap (the envelope's own buffer, not a copy). */
  readonly wrappedDeks: Buffer[] = [];

  constructor(
    readonly kind: ProviderKind = 'local',
    readonly key = 'fake-key-A',
    shareVersionsWith?: FakeKek,
  ) {
    this.description = `fake ${key}`;
    if (shareVersionsWith) {
      for (const [v, k] of shareVersionsWith.versions) this.versions.set(v, k);
    } else {
      this.versions.set('1', randomBytes(32));
    }
  }

  addVersion(): KeyVersionInfo {
    const v = String(this.versions.size + 1);
    this.versions.set(v, randomBytes(32));
    this.primary = v;
    return this.info(v);
  }

  info(v = this.primary): KeyVersionInfo {
    return {
      ref: { provider: this.kind, key: this.key, version: v, unique: `created-${v}` },
      state: 'enabled',
      ordinal: Number(v),
    };
  }

  async currentVersion(): Promise<KeyVersionInfo> {
    this.calls.currentVersion += 1;
    return this.info();
  }

  async wrap(dek: Buffer, version: KeyVersionInfo, signal: AbortSignal): Promise<WrapResult> {
    this.calls.wrap += 1;
    this.wrappedDeks.push(dek);
    await this.pause(signal);
    if (this.failWrap) throw this.failWrap;
    const kek = this.versions.get(version.ref.version);
    if (!kek) throw new UnknownKeyError('no such version');
    const nonce = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', kek, nonce);
    c.setAAD(Buffer.from(`${version.ref.key}|${version.ref.version}`));
    const body = Buffer.concat([c.update(dek), c.final()]);
    return { wrapped: Buffer.concat([nonce, body, c.getAuthTag()]), ref: version.ref };
  }

  async unwrap(wrapped: Buffer, ref: KekRef, signal: AbortSignal): Promise<Buffer> {
    this.calls.unwrap += 1;
    await this.pause(signal);
    if (this.failUnwrap) throw this.failUnwrap;
    if (this.unwrapResult) return Buffer.from(this.unwrapResult);
    const kek = this.versions.get(ref.version);
    if (!kek) throw new UnknownKeyError('no such version');
    try {
      const d = createDecipheriv('aes-256-gcm', kek, wrapped.subarray(0, 12));
      d.setAAD(Buffer.from(`${ref.key}|${ref.version}`));
      d.setAuthTag(wrapped.subarray(wrapped.length - 16));
      const out = Buffer.concat([d.update(wrapped.subarray(12, wrapped.length - 16)), d.final()]);
      if (this.corruptNext > 0) {
        this.corruptNext -= 1;
        out[7] ^= 0x40;
      }
      return out;
    } catch {
      throw new UnauthenticatedError('fake unwrap failed');
    }
  }

  canUnwrap(ref: KekRef): boolean {
    return ref.provider === this.kind && ref.key === this.key;
  }

  async close(): Promise<void> {}

  private async pause(signal: AbortSignal): Promise<void> {
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    if (signal.aborted) throw signal.reason;
  }
}

const signal = (): AbortSignal => new AbortController().signal;
const isZero = (b: Buffer): boolean => b.every((x) => x === 0);

function envelope(primary: FakeKek, over: Partial<EnvelopeOptions> = {}): Envelope {
  return new Envelope({
    primary,
    keyIdGeneration: 0,
    dekMaxAgeMs: 7 * 86_400_000,
    dekMaxUses: 1_000_000,
    cacheSize: 100,
    cacheTtlMs: 3_600_000,
    maxPlaintextBytes: 995,
    logger: silentLogger(),
    ...over,
  });
}

async function ready(primary: FakeKek, over: Partial<EnvelopeOptions> = {}): Promise<Envelope> {
  const env = envelope(primary, over);
  await env.adopt(primary.info(), 'startup', signal());
  return env;
}

async function errorOf(p: Promise<unknown> | (() => unknown)): Promise<unknown> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    return err;
  }
  throw new Error('expected an error, got a value');
}

describe('Envelope', () => {
  it('encrypt before adopt → UnavailableError; currentKeyId undefined', () => {
    const env = envelope(new FakeKek());
    expect(env.currentKeyId()).toBeUndefined();
    expect(env.writeInfo()).toBeUndefined();
    expect(() => env.encrypt(randomBytes(32))).toThrow(UnavailableError);
  });

  it('rotateDek before adopt → UnavailableError', async () => {
    await expect(envelope(new FakeKek()).rotateDek('manual', signal())).rejects.toBeInstanceOf(
      UnavailableError,
    );
  });

  it('round trip; key_id equals keyIdFor(ref); annotations pass the apiserver rules', async () => {
    const kek = new FakeKek();
    const env = await ready(kek);
    const seed = randomBytes(32);
    const r = env.encrypt(seed);
    expect(r.keyId).toBe(env.keyIdFor(kek.info().ref));
    expect(r.keyId).toBe(deriveKeyId(kek.info().ref, 0));
    expect(env.currentKeyId()).toBe(r.keyId);
    expect(Object.keys(r.annotations).sort()).toEqual([ANNOTATION_DEK, ANNOTATION_KEK]);
    expect(annotationErrors(r.annotations)).toEqual([]);
    expect(r.ciphertext.length).toBeLessThanOrEqual(1024);
    expect(r.ciphertext.includes(seed)).toBe(false);
    const back = await env.decrypt(r.ciphertext, r.keyId, r.annotations, signal());
    expect(back.equals(seed)).toBe(true);
    expect(kek.calls.unwrap).toBe(0); // the write DEK is used directly
  });

  it('encrypt does no remote call', async () => {
    const kek = new FakeKek();
    const env = await ready(kek);
    const before = { ...kek.calls };
    for (let i = 0; i < 10; i++) env.encrypt(randomBytes(32));
    expect(kek.calls).toEqual(before);
  });

  it('returned annotations are copies (mutating them does not affect later Encrypts)', async () => {
    const env = await ready(new FakeKek());
    const r1 = env.encrypt(randomBytes(32));
    const orig = Buffer.from(r1.annotations[ANNOTATION_DEK]);
    r1.annotations[ANNOTATION_DEK].fill(0);
    const r2 = env.encrypt(randomBytes(32));
    expect(r2.annotations[ANNOTATION_DEK].equals(orig)).toBe(true);
  });

  it('two replicas with the same provider: same key_id, and each decrypts the other’s ciphertexts', async () => {
    const kek = new FakeKek();
    const a = await ready(kek);
    const b = await ready(kek);
    expect(a.currentKeyId()).toBe(b.currentKeyId());
    expect(a.writeInfo()?.dekId).not.toBe(b.writeInfo()?.dekId); // different DEKs
    const sa = randomBytes(32);
    const sb = randomBytes(32);
    const ra = a.encrypt(sa);
    const rb = b.encrypt(sb);
    expect((await b.decrypt(ra.ciphertext, ra.keyId, ra.annotations, signal())).equals(sa)).toBe(true);
    expect((await a.decrypt(rb.ciphertext, rb.keyId, rb.annotations, signal())).equals(sb)).toBe(true);
    expect(kek.calls.unwrap).toBe(2);
  });

  it('a restarted envelope with a different keyIdGeneration still decrypts old data', async () => {
    const kek = new FakeKek();
    const a = await ready(kek);
    const seed = randomBytes(32);
    const r = a.encrypt(seed);
    const b = await ready(kek, { keyIdGeneration: 5 });
    expect(b.currentKeyId()).not.toBe(r.keyId);
    expect((await b.decrypt(r.ciphertext, r.keyId, r.annotations, signal())).equals(seed)).toBe(true);
  });

  it('empty and oversize plaintext → InvalidInputError; exactly the maximum works', async () => {
    const env = await ready(new FakeKek(), { maxPlaintextBytes: 100 });
    expect(() => env.encrypt(Buffer.alloc(0))).toThrow(InvalidInputError);
    expect(() => env.encrypt(Buffer.alloc(101))).toThrow(/101 bytes; the maximum is 100/);
    const r = env.encrypt(Buffer.alloc(100, 3));
    expect(
      (await env.decrypt(r.ciphertext, r.keyId, r.annotations, signal())).equals(Buffer.alloc(100, 3)),
    ).toBe(true);
  });

  it('decrypt refuses empty, too-short and over-1024-byte ciphertexts before any remote call', async () => {
    const kek = new FakeKek();
    const env = await ready(kek);
    const r = env.encrypt(randomBytes(32));
    for (const ct of [Buffer.alloc(0), r.ciphertext.subarray(0, 29), Buffer.alloc(1025, 1)]) {
      expect(await errorOf(env.decrypt(ct, r.keyId, r.annotations, signal()))).toBeInstanceOf(
        InvalidInputError,
      );
    }
    expect(kek.calls.unwrap).toBe(0);
  });

  describe('tampering fails closed', () => {
    /** Decrypts on a fresh replica too (so the unwrap path is exercised). */
    async function bothFail(
      mutate: (r: { ciphertext: Buffer; keyId: string; annotations: Record<string, Buffer> }) => void,
    ): Promise<void> {
      const kek = new FakeKek();
      const a = await ready(kek);
      const r = a.encrypt(randomBytes(32));
      mutate(r);
      for (const env of [a, await ready(kek)]) {
        const err = await errorOf(env.decrypt(r.ciphertext, r.keyId, r.annotations, signal()));
        expect(err).toBeInstanceOf(PluginError);
        expect(['invalid_input', 'unauthenticated', 'unknown_key']).toContain((err as PluginError).kind);
      }
    }

    it('every byte of the ciphertext', async () => {
      const kek = new FakeKek();
      const a = await ready(kek);
      const b = await ready(kek);
      const seed = randomBytes(32);
      const r = a.encrypt(seed);
      for (let i = 0; i < r.ciphertext.length; i++) {
        const t = Buffer.from(r.ciphertext);
        t[i] ^= 0x01;
        for (const env of [a, b]) {
          const err = await errorOf(env.decrypt(t, r.keyId, r.annotations, signal()));
          expect(err instanceof UnauthenticatedError || err instanceof InvalidInputError).toBe(true);
        }
      }
    });

    it('key_id', () =>
      bothFail((r) => (r.keyId = `${r.keyId.slice(0, -1)}${r.keyId.endsWith('0') ? '1' : '0'}`)));
    it('a key_id that does not match the annotations → UnknownKeyError before any unwrap', async () => {
      const kek = new FakeKek();
      const a = await ready(kek);
      const r = a.encrypt(randomBytes(32));
      const b = await ready(kek);
      for (const keyId of [
        deriveKeyId({ provider: 'local', key: 'fake-key-A', version: '2' }, 0),
        'local-zzz',
        '',
      ]) {
        expect(await errorOf(b.decrypt(r.ciphertext, keyId, r.annotations, signal()))).toBeInstanceOf(
          UnknownKeyError,
        );
      }
      expect(kek.calls.unwrap).toBe(0);
    });
    it('key_id of another version', () =>
      bothFail((r) => (r.keyId = deriveKeyId({ provider: 'local', key: 'fake-key-A', version: '2' }, 0))));
    it('the kek annotation (version changed, key_id recomputed to match)', () =>
      bothFail((r) => {
        const kek = JSON.parse(r.annotations[ANNOTATION_KEK].toString()) as Record<string, unknown>;
        kek.u = 'other-unique';
        r.annotations[ANNOTATION_KEK] = Buffer.from(JSON.stringify(kek));
        r.keyId = deriveKeyId(
          { provider: 'local', key: 'fake-key-A', version: '1', unique: 'other-unique' },
          0,
        );
      }));
    it('the kek annotation generation (key_id recomputed)', () =>
      bothFail((r) => {
        r.annotations[ANNOTATION_KEK] = Buffer.from(
          r.annotations[ANNOTATION_KEK].toString().replace('"g":0', '"g":1'),
        );
        r.keyId = deriveKeyId({ provider: 'local', key: 'fake-key-A', version: '1', unique: 'created-1' }, 1);
      }));
    it('every byte of the wrapped DEK', async () => {
      const kek = new FakeKek();
      const a = await ready(kek);
      const r = a.encrypt(randomBytes(32));
      const w = r.annotations[ANNOTATION_DEK];
      for (let i = 0; i < w.length; i++) {
        const t = Buffer.from(w);
        t[i] ^= 0x01;
        const err = await errorOf(
          a.decrypt(r.ciphertext, r.keyId, { ...r.annotations, [ANNOTATION_DEK]: t }, signal()),
        );
        expect(err).toBeInstanceOf(PluginError);
        expect(['unauthenticated', 'invalid_input']).toContain((err as PluginError).kind);
      }
    });
    it('a wrapped DEK swapped for another valid one', async () => {
      const kek = new FakeKek();
      const a = await ready(kek);
      const b = await ready(kek);
      const ra = a.encrypt(randomBytes(32));
      const rb = b.encrypt(randomBytes(32));
      const err = await errorOf(
        a.decrypt(
          ra.ciphertext,
          ra.keyId,
          { ...ra.annotations, [ANNOTATION_DEK]: rb.annotations[ANNOTATION_DEK] },
          signal(),
        ),
      );
      expect(err).toBeInstanceOf(UnauthenticatedError);
    });
    it('missing or extra annotations', async () => {
      const env = await ready(new FakeKek());
      const r = env.encrypt(randomBytes(32));
      expect(await errorOf(env.decrypt(r.ciphertext, r.keyId, {}, signal()))).toBeInstanceOf(
        InvalidInputError,
      );
      expect(
        await errorOf(
          env.decrypt(r.ciphertext, r.keyId, { ...r.annotations, 'x.y': Buffer.from('1') }, signal()),
        ),
      ).toBeInstanceOf(InvalidInputError);
    });
  });

  it('a cache hit means no second unwrap', async () => {
    const kek = new FakeKek();
    const a = await ready(kek);
    const b = await ready(kek);
    const r = a.encrypt(randomBytes(32));
    await b.decrypt(r.ciphertext, r.keyId, r.annotations, signal());
    await b.decrypt(r.ciphertext, r.keyId, r.annotations, signal());
    const r2 = a.encrypt(randomBytes(32)); // same DEK, new ciphertext
    await b.decrypt(r2.ciphertext, r2.keyId, r2.annotations, signal());
    expect(kek.calls.unwrap).toBe(1);
    expect(b.cacheSize).toBe(1);
  });

  it('decryptInMemory: plaintext when the DEK is in memory, undefined (no remote call, no miss counted) when it is not', async () => {
    const kek = new FakeKek();
    const a = await ready(kek);
    const metrics = new Metrics({ processMetrics: false });
    const b = await ready(kek, { metrics });
    const seed = randomBytes(32);
    const r = a.encrypt(seed);
    // b holds neither a's write DEK nor a cached copy: needs decrypt(), which unwraps.
    expect(b.decryptInMemory(r.ciphertext, r.keyId, r.annotations)).toBeUndefined();
    expect(kek.calls.unwrap).toBe(0);
    const events = async (): Promise<string> =>
      (await metrics.registry.getSingleMetricAsString('kms_plugin_dek_cache_events_total')) ?? '';
    expect(await events()).not.toContain('event="miss"');
    expect((await b.decrypt(r.ciphertext, r.keyId, r.annotations, signal())).equals(seed)).toBe(true);
    expect(await events()).toContain('kms_plugin_dek_cache_events_total{event="miss"} 1');
    // Now cached in b: served from memory, counted as a cache hit.
    expect(b.decryptInMemory(r.ciphertext, r.keyId, r.annotations)?.equals(seed)).toBe(true);
    expect(b.decryptInMemory(r.ciphertext, r.keyId, r.annotations)?.equals(seed)).toBe(true);
    expect(await events()).toContain('kms_plugin_dek_cache_events_total{event="hit"} 2');
    expect(kek.calls.unwrap).toBe(1);
    // The write DEK of the envelope itself.
    const own = b.encrypt(seed);
    expect(b.decryptInMemory(own.ciphertext, own.keyId, own.annotations)?.equals(seed)).toBe(true);
    const byKey = (await metrics.registry.getSingleMetricAsString('kms_plugin_decrypts_by_key_total')) ?? '';
    // a and b share the KEK, so every object here is under the current key_id.
    expect(byKey).toContain('kms_plugin_decrypts_by_key_total{key="current"} 4');
  });

  it('decryptInMemory throws what decrypt rejects with (tampering, wrong key_id, bad input)', async () => {
    const kek = new FakeKek();
    const env = await ready(kek);
    const r = env.encrypt(randomBytes(32));
    const tampered = Buffer.from(r.ciphertext);
    tampered[tampered.length - 1] ^= 1;
    const wrongKeyId = r.keyId.replace(/.$/, (c) => (c === '0' ? '1' : '0'));
    for (const [ct, keyId] of [
      [tampered, r.keyId],
      [r.ciphertext, wrongKeyId],
      [Buffer.alloc(3), r.keyId],
    ] as const) {
      const sync = await errorOf(() => env.decryptInMemory(ct, keyId, r.annotations));
      const async_ = await errorOf(env.decrypt(ct, keyId, r.annotations, signal()));
      expect(sync).toBeInstanceOf(Error);
      expect((sync as Error).constructor).toBe((async_ as Error).constructor);
      expect((sync as Error).message).toBe((async_ as Error).message);
    }
  });

  it('single-flight: 100 concurrent decrypts on a fresh envelope → exactly 1 unwrap', async () => {
    const kek = new FakeKek();
    const a = await ready(kek);
    const metrics = new Metrics({ processMetrics: false });
    const b = await ready(kek, { metrics });
    kek.delayMs = 20;
    const seeds = Array.from({ length: 100 }, () => randomBytes(32));
    const rs = seeds.map((s) => a.encrypt(s));
    const out = await Promise.all(rs.map((r) => b.decrypt(r.ciphertext, r.keyId, r.annotations, signal())));
    out.forEach((o, i) => expect(o.equals(seeds[i])).toBe(true));
    expect(kek.calls.unwrap).toBe(1);
    expect(await metrics.registry.getSingleMetricAsString('kms_plugin_unwraps_coalesced_total')).toMatch(
      /kms_plugin_unwraps_coalesced_total 99\n?/,
    );
  });

  it('a failed unwrap reaches every waiter and the next decrypt tries again', async () => {
    const kek = new FakeKek();
    const a = await ready(kek);
    const b = await ready(kek);
    const r = a.encrypt(randomBytes(32));
    kek.delayMs = 10;
    kek.failUnwrap = new UnavailableError('kms down');
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, () => b.decrypt(r.ciphertext, r.keyId, r.annotations, signal())),
    );
    for (const x of results) expect((x as PromiseRejectedResult).reason).toBeInstanceOf(UnavailableError);
    expect(kek.calls.unwrap).toBe(1);
    kek.failUnwrap = undefined;
    await expect(b.decrypt(r.ciphertext, r.keyId, r.annotations, signal())).resolves.toBeInstanceOf(Buffer);
    expect(kek.calls.unwrap).toBe(2);
  });

  it('an unwrap that returns the wrong length → CorruptError (and nothing is cached)', async () => {
    const kek = new FakeKek();
    const a = await ready(kek);
    const b = await ready(kek);
    const r = a.encrypt(randomBytes(32));
    kek.unwrapResult = Buffer.alloc(31, 1);
    expect(await errorOf(b.decrypt(r.ciphertext, r.keyId, r.annotations, signal()))).toBeInstanceOf(
      CorruptError,
    );
    expect(b.cacheSize).toBe(0);
  });

  it('an unwrap that returns the same wrong 32 bytes every time → UnauthenticatedError, never wrong plaintext, never cached', async () => {
    const kek = new FakeKek();
    const a = await ready(kek);
    const b = await ready(kek);
    const r = a.encrypt(randomBytes(32));
    kek.unwrapResult = randomBytes(32);
    expect(await errorOf(b.decrypt(r.ciphertext, r.keyId, r.annotations, signal()))).toBeInstanceOf(
      UnauthenticatedError,
    );
    expect(b.cacheSize).toBe(0);
    kek.unwrapResult = undefined;
    await expect(b.decrypt(r.ciphertext, r.keyId, r.annotations, signal())).resolves.toBeInstanceOf(Buffer);
  });

  describe('a DEK from the KMS is verified before it is cached (issue 12.1)', () => {
    function capture(): {
      logger: ReturnType<typeof createLogger>;
      lines: () => Array<Record<string, unknown>>;
    } {
      const chunks: string[] = [];
      const logger = createLogger({ level: 'info', destination: { write: (c: string) => chunks.push(c) } });
      return {
        logger,
        lines: () => chunks.map((c) => JSON.parse(c) as Record<string, unknown>),
      };
    }
    async function failures(metrics: Metrics): Promise<number> {
      const m = await metrics.dekVerificationFailures.get();
      return m.values.reduce((n, v) => n + v.value, 0);
    }

    it('new ciphertexts are format 2 and carry the DEK commitment', async () => {
      const env = await ready(new FakeKek());
      const r = env.encrypt(randomBytes(32));
      expect(r.ciphertext[0]).toBe(FORMAT_V2);
      expect(r.ciphertext.length).toBe(OVERHEAD_V2_BYTES + 32);
    });

    it('one corrupted unwrap answer: the call fails UNAVAILABLE (not INVALID_ARGUMENT), nothing is cached, a log line and a metric; the next Decrypt unwraps again and works', async () => {
      const kek = new FakeKek();
      const a = await ready(kek);
      const metrics = new Metrics({ processMetrics: false });
      const log = capture();
      const b = await ready(kek, { metrics, logger: log.logger });
      const seed = randomBytes(32);
      const r = a.encrypt(seed);
      kek.corruptNext = 1;
      const before = kek.calls.unwrap;
      const err = await errorOf(b.decrypt(r.ciphertext, r.keyId, r.annotations, signal()));
      expect(err).toBeInstanceOf(UnavailableError);
      expect(err).not.toBeInstanceOf(UnauthenticatedError);
      expect(b.cacheSize).toBe(0);
      expect(await failures(metrics)).toBe(1);
      expect(
        log.lines().some((l) => String(l.msg).includes('KMS returned a DEK that failed verification')),
      ).toBe(true);
      expect(kek.calls.unwrap - before).toBe(2); // asked twice: the answers differed
      await expect(b.decrypt(r.ciphertext, r.keyId, r.annotations, signal())).resolves.toEqual(seed);
      expect(b.cacheSize).toBe(1);
      expect(kek.calls.unwrap - before).toBe(3);
      // Cached now: no further unwrap.
      await expect(b.decrypt(r.ciphertext, r.keyId, r.annotations, signal())).resolves.toEqual(seed);
      expect(kek.calls.unwrap - before).toBe(3);
    });

    it('single-flight waiters never get the corrupted DEK: all fail UNAVAILABLE, then all succeed', async () => {
      const kek = new FakeKek();
      const a = await ready(kek);
      const b = await ready(kek);
      const seeds = Array.from({ length: 5 }, () => randomBytes(32));
      const rs = seeds.map((s) => a.encrypt(s));
      kek.corruptNext = 1;
      kek.delayMs = 20;
      const errs = await Promise.all(
        rs.map((r) => errorOf(b.decrypt(r.ciphertext, r.keyId, r.annotations, signal()))),
      );
      for (const e of errs) expect(e).toBeInstanceOf(UnavailableError);
      expect(b.cacheSize).toBe(0);
      const outs = await Promise.all(
        rs.map((r) => b.decrypt(r.ciphertext, r.keyId, r.annotations, signal())),
      );
      outs.forEach((o, i) => expect(o).toEqual(seeds[i]));
    });

    it('format 1 ciphertexts (written before the commitment existed) still decrypt; a corrupted unwrap of one is a KMS fault, not cached', async () => {
      const kek = new FakeKek();
      const a = await ready(kek);
      const metrics = new Metrics({ processMetrics: false });
      const b = await ready(kek, { metrics });
      const r = a.encrypt(randomBytes(32));
      // Rebuild the same object as format 1 (how the plugin wrote it before format 2).
      const dek = kek.wrappedDeks[0];
      const seed = randomBytes(32);
      const v1 = seal(dek, seed, {
        keyId: r.keyId,
        kekBytes: r.annotations[ANNOTATION_KEK],
        wrapped: r.annotations[ANNOTATION_DEK],
      });
      expect(v1[0]).toBe(FORMAT_V1);
      kek.corruptNext = 1;
      expect(await errorOf(b.decrypt(v1, r.keyId, r.annotations, signal()))).toBeInstanceOf(UnavailableError);
      expect(b.cacheSize).toBe(0);
      expect(await failures(metrics)).toBe(1);
      await expect(b.decrypt(v1, r.keyId, r.annotations, signal())).resolves.toEqual(seed);
      expect(b.cacheSize).toBe(1);
      // A tampered format-1 object on a cold cache is still INVALID_ARGUMENT, and poisons nothing.
      const c = await ready(kek);
      const t = Buffer.from(v1);
      t[t.length - 1] ^= 1;
      expect(await errorOf(c.decrypt(t, r.keyId, r.annotations, signal()))).toBeInstanceOf(
        UnauthenticatedError,
      );
      expect(c.cacheSize).toBe(0);
      await expect(c.decrypt(v1, r.keyId, r.annotations, signal())).resolves.toEqual(seed);
    });

    it('a tampered commitment on a cold cache is INVALID_ARGUMENT (the KMS answered the same twice), and nothing is cached', async () => {
      const kek = new FakeKek();
      const a = await ready(kek);
      const b = await ready(kek);
      const r = a.encrypt(randomBytes(32));
      const t = Buffer.from(r.ciphertext);
      t[5] ^= 1;
      expect(await errorOf(b.decrypt(t, r.keyId, r.annotations, signal()))).toBeInstanceOf(
        UnauthenticatedError,
      );
      expect(b.cacheSize).toBe(0);
    });
  });

  it('blockWrites: Encrypt fails FAILED_PRECONDITION class while Decrypts of cached DEKs go on (issue 12.3)', async () => {
    const kek = new FakeKek();
    const env = await ready(kek);
    const seed = randomBytes(32);
    const r = env.encrypt(seed);
    env.blockWrites(new KeyDisabledError('KEK disabled: refusing new writes'));
    expect(await errorOf(() => env.encrypt(randomBytes(32)))).toBeInstanceOf(KeyDisabledError);
    await expect(env.decrypt(r.ciphertext, r.keyId, r.annotations, signal())).resolves.toEqual(seed);
    env.blockWrites(undefined);
    expect(env.encrypt(randomBytes(32)).keyId).toBe(r.keyId);
  });

  it('an empty wrap result → CorruptError and no state change', async () => {
    const kek = new FakeKek();
    const env = envelope(kek);
    const orig = kek.wrap.bind(kek);
    kek.wrap = async (d, v, s) => ({ ...(await orig(d, v, s)), wrapped: Buffer.alloc(0) });
    expect(await errorOf(env.adopt(kek.info(), 'startup', signal()))).toBeInstanceOf(CorruptError);
    expect(env.currentKeyId()).toBeUndefined();
  });

  it('a ref no provider can unwrap → UnknownKeyError naming provider, key and version', async () => {
    const kekA = new FakeKek('local', 'key-A');
    const kekB = new FakeKek('local', 'key-B');
    const a = await ready(kekA);
    const b = await ready(kekB);
    const r = a.encrypt(randomBytes(32));
    const err = await errorOf(b.decrypt(r.ciphertext, r.keyId, r.annotations, signal()));
    expect(err).toBeInstanceOf(UnknownKeyError);
    expect((err as Error).message).toContain('local key key-A version 1');
    expect((err as Error).message).toMatch(/decryptOnly/);
    expect(kekB.calls.unwrap).toBe(0);
  });

  it('decryptOnly routing: primary B decrypts data made under A through the decrypt-only provider A', async () => {
    const kekA = new FakeKek('aws', 'key-A');
    const a = await ready(kekA);
    const seed = randomBytes(32);
    const r = a.encrypt(seed);
    const kekA2 = new FakeKek('aws', 'key-A', kekA); // the same key material, counted separately
    const kekB = new FakeKek('gcp', 'key-B');
    const b = await ready(kekB, { decryptOnly: [kekA2] });
    expect(b.currentKeyId()).toBe(deriveKeyId(kekB.info().ref, 0));
    expect((await b.decrypt(r.ciphertext, r.keyId, r.annotations, signal())).equals(seed)).toBe(true);
    expect(kekA2.calls.unwrap).toBe(1);
    expect(kekB.calls.unwrap).toBe(0);
    expect(kekA.calls.unwrap).toBe(0);
    // New writes still go to B.
    expect(b.encrypt(randomBytes(32)).keyId).toBe(deriveKeyId(kekB.info().ref, 0));
  });

  describe('DEK rotation policy', () => {
    it('maxUses triggers onRotationDue once', async () => {
      const env = await ready(new FakeKek(), { dekMaxUses: 3 });
      const reasons: string[] = [];
      env.onRotationDue((r) => reasons.push(r));
      env.encrypt(randomBytes(32));
      env.encrypt(randomBytes(32));
      expect(reasons).toEqual([]);
      expect(env.rotationDue()).toBeUndefined();
      env.encrypt(randomBytes(32));
      expect(reasons).toEqual(['uses']);
      expect(env.rotationDue()).toBe('uses');
      env.encrypt(randomBytes(32));
      env.encrypt(randomBytes(32));
      expect(reasons).toEqual(['uses']);
      expect(env.writeInfo()?.uses).toBe(5);
    });

    it('after a rotation the listener fires again when the new DEK is due', async () => {
      const env = await ready(new FakeKek(), { dekMaxUses: 2 });
      const reasons: string[] = [];
      env.onRotationDue((r) => reasons.push(r));
      env.encrypt(randomBytes(32));
      env.encrypt(randomBytes(32));
      await env.rotateDek('uses', signal());
      expect(env.writeInfo()?.uses).toBe(0);
      env.encrypt(randomBytes(32));
      env.encrypt(randomBytes(32));
      expect(reasons).toEqual(['uses', 'uses']);
    });

    it('maxAge with an injected clock', async () => {
      let t = 1_000_000;
      const env = await ready(new FakeKek(), { dekMaxAgeMs: 60_000, now: () => t });
      const reasons: string[] = [];
      env.onRotationDue((r) => reasons.push(r));
      t += 59_999;
      env.encrypt(randomBytes(32));
      expect(reasons).toEqual([]);
      expect(env.rotationDue()).toBeUndefined();
      t += 1;
      expect(env.rotationDue()).toBe('age');
      env.encrypt(randomBytes(32));
      env.encrypt(randomBytes(32));
      expect(reasons).toEqual(['age']);
      expect(env.writeInfo()?.createdAt).toBe(1_000_000);
    });

    it('rotateDek gives a new DEK id, same key_id; the old DEK still decrypts without an unwrap', async () => {
      const kek = new FakeKek();
      const env = await ready(kek);
      const seed = randomBytes(32);
      const old = env.encrypt(seed);
      const before = env.writeInfo();
      const keyId = await env.rotateDek('manual', signal());
      const after = env.writeInfo();
      expect(keyId).toBe(before?.keyId);
      expect(after?.keyId).toBe(before?.keyId);
      expect(after?.dekId).not.toBe(before?.dekId);
      expect(after?.dekId).toBe(dekIdOf(env.encrypt(randomBytes(32)).annotations[ANNOTATION_DEK]));
      expect((await env.decrypt(old.ciphertext, old.keyId, old.annotations, signal())).equals(seed)).toBe(
        true,
      );
      expect(kek.calls.unwrap).toBe(0);
      expect(kek.calls.wrap).toBe(2);
    });
  });

  describe('adopt', () => {
    it('a new KEK version switches key_id atomically; older data still decrypts', async () => {
      const kek = new FakeKek();
      const env = await ready(kek);
      const seed = randomBytes(32);
      const old = env.encrypt(seed);
      const v2 = kek.addVersion();
      const newId = await env.adopt(v2, 'kek_change', signal());
      expect(newId).toBe(deriveKeyId(v2.ref, 0));
      expect(newId).not.toBe(old.keyId);
      expect(env.currentKeyId()).toBe(newId);
      expect(env.currentVersion()?.ref).toEqual(v2.ref);
      const r = env.encrypt(randomBytes(32));
      expect(r.keyId).toBe(newId);
      expect(JSON.parse(r.annotations[ANNOTATION_KEK].toString()).v).toBe('2');
      expect((await env.decrypt(old.ciphertext, old.keyId, old.annotations, signal())).equals(seed)).toBe(
        true,
      );
    });

    it('Encrypt keeps using the old state while the wrap is in flight', async () => {
      const kek = new FakeKek();
      const env = await ready(kek);
      const oldId = env.currentKeyId();
      kek.delayMs = 30;
      const p = env.adopt(kek.addVersion(), 'kek_change', signal());
      expect(env.encrypt(randomBytes(32)).keyId).toBe(oldId);
      expect(env.currentKeyId()).toBe(oldId);
      const newId = await p;
      expect(env.encrypt(randomBytes(32)).keyId).toBe(newId);
    });

    it('a wrap failure leaves the state unchanged and zeroes the unused DEK', async () => {
      const kek = new FakeKek();
      const env = await ready(kek);
      const before = env.writeInfo();
      kek.failWrap = new UnavailableError('kms down');
      const err = await errorOf(env.adopt(kek.addVersion(), 'kek_change', signal()));
      expect(err).toBeInstanceOf(UnavailableError);
      expect(env.writeInfo()).toEqual(before);
      expect(isZero(kek.wrappedDeks[1])).toBe(true);
      const seed = randomBytes(32);
      const r = env.encrypt(seed);
      expect(r.keyId).toBe(before?.keyId);
      expect((await env.decrypt(r.ciphertext, r.keyId, r.annotations, signal())).equals(seed)).toBe(true);
    });

    it('a non-PluginError from wrap becomes an internal error (no message leak)', async () => {
      const kek = new FakeKek();
      const env = envelope(kek);
      kek.failWrap = new Error('raw sdk message with token=abc');
      const err = await errorOf(env.adopt(kek.info(), 'startup', signal()));
      expect(err).toBeInstanceOf(PluginError);
      expect((err as PluginError).kind).toBe('internal');
      expect((err as Error).message).not.toContain('token');
    });
  });

  it('close() zeroes the write DEK and the older DEKs, and refuses further work', async () => {
    const kek = new FakeKek();
    const env = await ready(kek);
    const r = env.encrypt(randomBytes(32));
    await env.rotateDek('manual', signal());
    expect(kek.wrappedDeks).toHaveLength(2);
    expect(kek.wrappedDeks.some(isZero)).toBe(false);
    env.close();
    expect(kek.wrappedDeks.every(isZero)).toBe(true);
    expect(env.currentKeyId()).toBeUndefined();
    expect(env.cacheSize).toBe(0);
    expect(() => env.encrypt(randomBytes(32))).toThrow(UnavailableError);
    expect(await errorOf(env.decrypt(r.ciphertext, r.keyId, r.annotations, signal()))).toBeInstanceOf(
      UnavailableError,
    );
    expect(await errorOf(env.adopt(kek.info(), 'startup', signal()))).toBeInstanceOf(UnavailableError);
  });

  it('close() during an adopt: the new DEK is zeroed and not published', async () => {
    const kek = new FakeKek();
    const env = envelope(kek);
    kek.delayMs = 20;
    const p = env.adopt(kek.info(), 'startup', signal());
    env.close();
    expect(await errorOf(p)).toBeInstanceOf(UnavailableError);
    expect(isZero(kek.wrappedDeks[0])).toBe(true);
    expect(env.currentKeyId()).toBeUndefined();
  });

  it('a decrypt whose caller aborts reports cancellation, and the others still succeed', async () => {
    const kek = new FakeKek();
    const a = await ready(kek);
    const b = await ready(kek);
    const seed = randomBytes(32);
    const r = a.encrypt(seed);
    kek.delayMs = 30;
    const c = new AbortController();
    const p1 = b.decrypt(r.ciphertext, r.keyId, r.annotations, c.signal);
    const p2 = b.decrypt(r.ciphertext, r.keyId, r.annotations, signal());
    c.abort();
    const err = await errorOf(p1);
    expect(err).toBeInstanceOf(PluginError);
    expect((err as PluginError).kind).toBe('cancelled');
    expect((await p2).equals(seed)).toBe(true);
    expect(kek.calls.unwrap).toBe(1);
  });

  it('sweep drops idle cached DEKs (TTL with an injected clock)', async () => {
    let t = 0;
    const kek = new FakeKek();
    const a = await ready(kek);
    const b = await ready(kek, { cacheTtlMs: 1000, now: () => t });
    const r = a.encrypt(randomBytes(32));
    await b.decrypt(r.ciphertext, r.keyId, r.annotations, signal());
    expect(b.cacheSize).toBe(1);
    t += 1001;
    b.sweep();
    expect(b.cacheSize).toBe(0);
    await b.decrypt(r.ciphertext, r.keyId, r.annotations, signal());
    expect(kek.calls.unwrap).toBe(2);
  });
});
