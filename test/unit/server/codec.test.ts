/**
 * The hand-written codecs (src/server/codec.ts) against proto-loader's (the reference they
 * replace): every field of the six messages, unknown fields, duplicates, malformed input and
 * protobufjs's limits. Encoding must give identical bytes; decoding identical values, and the
 * same inputs must be rejected.
 */
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { KMS_SERVICE, RECURSION_LIMIT } from '../../../src/server/codec.js';
import { PROTO_PATH } from '../../../src/server/proto.js';

type Def = MethodDefinition<unknown, unknown>;

const reference = loadSync(PROTO_PATH, {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
})['v2.KeyManagementService'] as unknown as ServiceDefinition;

const METHOD_NAMES = ['Status', 'Encrypt', 'Decrypt'] as const;

interface Side {
  name: string;
  ours: (v: never) => Buffer;
  ref: (v: never) => Buffer;
  oursDecode: (b: Buffer) => unknown;
  refDecode: (b: Buffer) => unknown;
}

/** The six messages: each method's request and response, with both codecs. */
const MESSAGES: Side[] = METHOD_NAMES.flatMap((m) => {
  const o = KMS_SERVICE[m] as Def;
  const r = reference[m] as Def;
  return [
    {
      name: `${m}Request`,
      ours: o.requestSerialize,
      ref: r.requestSerialize,
      oursDecode: o.requestDeserialize,
      refDecode: r.requestDeserialize,
    },
    {
      name: `${m}Response`,
      ours: o.responseSerialize,
      ref: r.responseSerialize,
      oursDecode: o.responseDeserialize,
      refDecode: r.responseDeserialize,
    },
  ];
});
const message = (name: string): Side => MESSAGES.find((m) => m.name === name)!;

type Outcome = { ok: true; value: unknown } | { ok: false; error: string };

function run(f: () => unknown): Outcome {
  try {
    return { ok: true, value: normalize(f()) };
  } catch (err) {
    return { ok: false, error: (err as Error).constructor.name };
  }
}

/**
 * The one documented difference on decode: a map entry without a value is an empty Array in
 * protobufjs and an empty Buffer in ours. Buffers are compared as bytes.
 */
function normalize(v: unknown): unknown {
  if (Array.isArray(v) && v.length === 0) return Buffer.alloc(0);
  if (v instanceof Uint8Array) return Buffer.from(v);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) {
      const value = normalize((v as Record<string, unknown>)[k]);
      Object.defineProperty(out, k, { value, enumerable: true, configurable: true, writable: true });
    }
    return out;
  }
  return v;
}

function sameDecode(side: Side, bytes: Buffer): Outcome {
  const ours = run(() => side.oursDecode(bytes));
  const ref = run(() => side.refDecode(bytes));
  expect(ours).toEqual(ref);
  return ours;
}

function sameEncode(side: Side, value: unknown): Outcome {
  const ours = run(() => side.ours(value as never));
  const ref = run(() => side.ref(value as never));
  expect(ours).toEqual(ref);
  return ours;
}

// --- builders for hand-made wire bytes --------------------------------------------------------

function varint(n: number | bigint): number[] {
  let v = BigInt(n);
  const out: number[] = [];
  while (v > 127n) {
    out.push(Number(v & 127n) | 128);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}
const tag = (field: number, wire: number): number[] => varint(field * 8 + wire);
const ld = (field: number, body: number[] | Buffer | string): number[] => {
  const b = typeof body === 'string' ? [...Buffer.from(body)] : [...body];
  return [...tag(field, 2), ...varint(b.length), ...b];
};
const entry = (field: number, key: string | undefined, value: number[] | undefined, extra: number[] = []) =>
  ld(field, [
    ...(key === undefined ? [] : ld(1, key)),
    ...(value === undefined ? [] : ld(2, value)),
    ...extra,
  ]);
const buf = (...parts: number[][]): Buffer => Buffer.from(parts.flat());

// --- arbitraries ---------------------------------------------------------------------------

const text = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
);
const bytes = fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u));
const annotations = fc.dictionary(
  fc.oneof(text, fc.constantFrom('kms.example.io/kek', 'kms.example.io/dek', '__proto__', '')),
  bytes,
  { maxKeys: 5 },
);
const FIELDS: Record<string, Record<string, fc.Arbitrary<unknown>>> = {
  StatusRequest: {},
  StatusResponse: { version: text, healthz: text, key_id: text },
  EncryptRequest: { plaintext: bytes, uid: text },
  EncryptResponse: { ciphertext: bytes, key_id: text, annotations },
  DecryptRequest: { ciphertext: bytes, uid: text, key_id: text, annotations },
  DecryptResponse: { plaintext: bytes },
};
const valueOf = (name: string) => fc.record(FIELDS[name], { requiredKeys: [] });

describe('the custom codecs are proto-loader byte for byte', () => {
  it('registers the three methods with the same paths and streaming flags', () => {
    for (const m of METHOD_NAMES) {
      const o = KMS_SERVICE[m] as Def;
      const r = reference[m] as Def;
      expect({ path: o.path, rs: o.requestStream, ss: o.responseStream, name: o.originalName }).toEqual({
        path: r.path,
        rs: r.requestStream,
        ss: r.responseStream,
        name: r.originalName,
      });
    }
    expect(Object.keys(KMS_SERVICE).sort()).toEqual(Object.keys(reference).sort());
  });

  it.each(MESSAGES.map((m) => [m.name, m] as const))(
    '%s: random values encode identically and round-trip',
    (name, side) => {
      fc.assert(
        fc.property(valueOf(name), (value) => {
          const enc = sameEncode(side, value);
          expect(enc.ok).toBe(true);
          const bytesOut = (enc as { value: Buffer }).value;
          const dec = sameDecode(side, bytesOut);
          expect(dec.ok).toBe(true);
        }),
        { numRuns: 300 },
      );
    },
  );

  it('encodes every field, set or empty, in field order', () => {
    const s = message('DecryptRequest');
    const full = {
      ciphertext: Buffer.from([1, 2, 3]),
      uid: 'a-uid',
      key_id: 'k1',
      annotations: { 'kms.example.io/kek': Buffer.from('x'), 'kms.example.io/dek': Buffer.alloc(0) },
    };
    const out = sameEncode(s, full);
    expect((out as { value: Buffer }).value).toEqual(
      buf(
        ld(1, [1, 2, 3]),
        ld(2, 'a-uid'),
        ld(3, 'k1'),
        entry(4, 'kms.example.io/kek', [...Buffer.from('x')]),
        entry(4, 'kms.example.io/dek', []),
      ),
    );
    // Empty strings and bytes are written when present (protobufjs does; Go would omit them).
    expect(
      (sameEncode(s, { ciphertext: Buffer.alloc(0), uid: '', key_id: '' }) as { value: Buffer }).value,
    ).toEqual(buf([0x0a, 0], [0x12, 0], [0x1a, 0]));
    for (const side of MESSAGES) expect((sameEncode(side, {}) as { value: Buffer }).value).toHaveLength(0);
  });

  it('converts and rejects values the way fromObject does', () => {
    const cases: unknown[] = [
      { key_id: 123, uid: true, ciphertext: [1, 2, 300] },
      { ciphertext: 'AQID', annotations: { a: 'AAEC', b: [7, 8] } },
      { ciphertext: 5, annotations: { a: 5 } },
      { annotations: null, key_id: null, uid: undefined },
      { annotations: 0 },
      { annotations: 'not an object' },
      { annotations: { a: null } },
      { annotations: [Buffer.from('x')] },
      [],
      null,
      'string',
    ];
    for (const value of cases) {
      for (const side of MESSAGES) sameEncode(side, value);
    }
    expect(sameEncode(message('DecryptRequest'), { annotations: 'not an object' }).ok).toBe(false);
    expect(sameEncode(message('StatusResponse'), []).ok).toBe(false);
  });

  it('keeps a long uid and annotation (multi-byte lengths) and the __proto__ key', () => {
    const s = message('EncryptResponse');
    const value = {
      ciphertext: Buffer.alloc(1024, 7),
      key_id: 'é'.repeat(300),
      annotations: JSON.parse('{"__proto__": [1, 2]}') as Record<string, number[]>,
    };
    const out = sameEncode(s, value) as { value: Buffer };
    const dec = sameDecode(s, out.value) as { value: { annotations: Record<string, Buffer> } };
    expect(Object.keys(dec.value.annotations)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf((s.oursDecode(out.value) as { annotations: object }).annotations)).toBe(
      Object.prototype,
    );
  });
});

describe('EncryptResponse: the repeated key_id and annotations', () => {
  it('reuses the encoded tail only while key_id and every annotation are byte-equal', () => {
    const s = message('EncryptResponse');
    const kek = Buffer.from('{"provider":"local"}');
    const dek = randomBytesLike(48);
    const base = { key_id: 'k1', annotations: { 'kms.example.io/kek': kek, 'kms.example.io/dek': dek } };
    const variants: unknown[] = [
      { ...base, ciphertext: Buffer.from([1]) },
      { ...base, ciphertext: Buffer.from([2, 3]) }, // reused tail
      { ...base, ciphertext: Buffer.alloc(200, 9) },
      { ...base, key_id: 'k2', ciphertext: Buffer.from([4]) },
      { ...base, annotations: { ...base.annotations, 'kms.example.io/dek': Buffer.from(dek).fill(1, 3, 4) } },
      { ...base, annotations: { 'kms.example.io/dek': dek, 'kms.example.io/kek': kek } }, // key order
      { ...base, annotations: { ...base.annotations, extra: Buffer.alloc(0) } },
      { ...base, annotations: { 'kms.example.io/kek': kek } },
      { ...base, annotations: { ...base.annotations, 'kms.example.io/dek': [...dek] } },
      { ...base, annotations: { ...base.annotations, 'kms.example.io/dek': dek.toString('base64') } },
      { ...base },
      { ...base, key_id: undefined, ciphertext: Buffer.from([5]) },
      { ...base, ciphertext: Buffer.from([6]) },
    ];
    for (const v of variants) expect(sameEncode(s, v).ok).toBe(true);
    // A caller mutating its annotation Buffer after an answer must not change later answers.
    const mutable = Buffer.from(dek);
    const v1 = {
      ...base,
      annotations: { ...base.annotations, 'kms.example.io/dek': mutable },
      ciphertext: Buffer.from([7]),
    };
    sameEncode(s, v1);
    mutable[0] ^= 0xff;
    sameEncode(s, v1);
  });
});

function randomBytesLike(n: number): Buffer {
  return Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + 11) & 255));
}

describe('decoding matches proto-loader on unusual and malformed input', () => {
  const d = message('DecryptRequest');

  it('skips unknown fields of every wire type, groups included', () => {
    const unknowns = [
      [...tag(9, 0), ...varint(2n ** 63n)],
      [...tag(10, 1), 1, 2, 3, 4, 5, 6, 7, 8],
      ld(11, 'unknown'),
      [...tag(12, 5), 1, 2, 3, 4],
      [...tag(13, 3), ...tag(1, 0), 5, ...tag(2, 3), ...tag(2, 4), ...tag(13, 4)],
      [...tag(1000, 0), 1],
    ];
    for (const u of unknowns) {
      const out = sameDecode(d, buf(ld(1, [9, 9]), u, ld(3, 'kid')));
      expect(out).toEqual({
        ok: true,
        value: { ciphertext: Buffer.from([9, 9]), uid: '', key_id: 'kid', annotations: {} },
      });
      for (const side of MESSAGES) sameDecode(side, buf(u));
    }
    // Unknown fields inside a map entry, too.
    expect(sameDecode(d, buf(entry(4, 'k', [1], [...tag(3, 0), 1]))).ok).toBe(true);
  });

  it('last duplicate wins; map entries merge; missing key or value get defaults', () => {
    const out = sameDecode(
      d,
      buf(
        ld(1, [1]),
        ld(1, [2, 2]),
        ld(3, 'a'),
        ld(3, 'b'),
        entry(4, 'x', [1]),
        entry(4, 'y', [2]),
        entry(4, 'x', [3]),
        entry(4, undefined, [4]),
        entry(4, 'novalue', undefined),
      ),
    );
    expect(out).toEqual({
      ok: true,
      value: {
        ciphertext: Buffer.from([2, 2]),
        uid: '',
        key_id: 'b',
        annotations: {
          x: Buffer.from([3]),
          y: Buffer.from([2]),
          '': Buffer.from([4]),
          novalue: Buffer.alloc(0),
        },
      },
    });
  });

  it('rejects what protobufjs rejects and accepts what it accepts at the limits', () => {
    const cases: Buffer[] = [
      buf([0x0a]), // length missing
      buf([0x0a, 5, 1, 2]), // bytes past the end
      buf([0x12, 5, 0x61]), // string past the end: clamped, not an error
      buf([0x0a, 0x80]), // truncated varint
      buf([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), // 4 GiB length
      buf([0x48, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), // 10-byte varint
      buf([0x48, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), // 11 bytes
      buf([0x4c]), // end group without a start
      buf([0x4e]), // wire type 6
      buf([0x4f]), // wire type 7
      buf([0x00, 0x00]), // field number 0
      buf([0x4b, 0x4c]), // empty group
      buf([0x4b]), // unterminated group
      buf(tag(4, 2), [3], ld(1, 'abc')), // map entry past the end
      buf(tag(4, 2), [2], ld(2, [1, 2, 3])), // map value past the entry
      buf(tag(4, 2), [2], [0x0a, 5]), // map key clamped to the entry
      buf([0x88, 0x80, 0x80, 0x80, 0x00, 0x01]), // over-long tag encoding
      buf([0x08 | 0x80]), // tag truncated at the end
      buf(tag(1, 0), [1]), // known field, wrong wire type
      buf(tag(3, 5), [1, 2, 3, 4]),
      Buffer.alloc(0),
    ];
    const depth = (n: number): Buffer =>
      buf(...Array<number[]>(n).fill(tag(20, 3)), ...Array<number[]>(n).fill(tag(20, 4)));
    cases.push(depth(RECURSION_LIMIT), depth(RECURSION_LIMIT + 1), depth(RECURSION_LIMIT + 2));
    for (const c of cases) for (const side of MESSAGES) sameDecode(side, c);
    expect(run(() => d.oursDecode(depth(RECURSION_LIMIT + 2))).ok).toBe(false);
    expect(run(() => d.oursDecode(depth(RECURSION_LIMIT + 1))).ok).toBe(true);
    expect(run(() => d.oursDecode(buf([0x0a, 5, 1, 2]))).ok).toBe(false);
  });

  it('invalid UTF-8 in strings decodes as protobufjs does (U+FFFD)', () => {
    const out = sameDecode(d, buf(ld(2, [0xff, 0xfe, 0x41]), ld(3, [0xc3])));
    expect((out as { value: { uid: string } }).value.uid).toBe('\ufffd\ufffdA');
  });

  it('random bytes and mutated valid messages: same value or both rejected', () => {
    const valid = fc
      .tuple(fc.constantFrom(...MESSAGES.map((m) => m.name)), fc.nat())
      .chain(([name]) => valueOf(name).map((v) => [name, v] as const));
    fc.assert(
      fc.property(
        valid,
        fc.array(
          fc.tuple(
            fc.nat(),
            fc.integer({ min: 0, max: 255 }),
            fc.constantFrom('set', 'insert', 'delete', 'cut'),
          ),
          {
            maxLength: 4,
          },
        ),
        ([name, value], edits) => {
          const side = message(name);
          const bytesIn = [...side.ref(value as never)];
          for (const [at, byte, op] of edits) {
            const i = bytesIn.length ? at % (bytesIn.length + 1) : 0;
            if (op === 'set' && i < bytesIn.length) bytesIn[i] = byte;
            else if (op === 'insert') bytesIn.splice(i, 0, byte);
            else if (op === 'delete') bytesIn.splice(i, 1);
            else if (op === 'cut') bytesIn.length = i;
          }
          for (const s of MESSAGES) sameDecode(s, Buffer.from(bytesIn));
        },
      ),
      { numRuns: 1500 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 48 }), (u) => {
        for (const s of MESSAGES) sameDecode(s, Buffer.from(u));
      }),
      { numRuns: 1500 },
    );
  });

  it('decoded bytes are views of the received message (no copies), strings are owned', () => {
    const wire = buf(ld(1, [5, 6, 7]), ld(3, 'k'));
    const out = d.oursDecode(wire) as { ciphertext: Buffer; annotations: object };
    expect(out.ciphertext.buffer).toBe(wire.buffer);
    expect(Object.getPrototypeOf(out.annotations)).toBe(Object.prototype);
  });
});

describe('deliberate differences (safer than protobufjs)', () => {
  it('a lone surrogate encodes as U+FFFD, which is valid UTF-8', () => {
    const s = message('StatusResponse');
    const ours = s.ours({ version: 'a\ud800b', healthz: 'ok', key_id: 'k' } as never);
    expect([...ours.subarray(0, 7)]).toEqual([0x0a, 5, 0x61, 0xef, 0xbf, 0xbd, 0x62]);
    // Same length as protobufjs's encoding; only those three bytes differ.
    expect(ours).toHaveLength(s.ref({ version: 'a\ud800b', healthz: 'ok', key_id: 'k' } as never).length);
  });

  it('a map entry without a value decodes to an empty Buffer, not an empty Array', () => {
    const d = message('DecryptRequest');
    const wire = buf(entry(4, 'k', undefined));
    expect((d.oursDecode(wire) as { annotations: Record<string, unknown> }).annotations.k).toEqual(
      Buffer.alloc(0),
    );
    expect((d.refDecode(wire) as { annotations: Record<string, unknown> }).annotations.k).toEqual([]);
  });

  it('Status answers are encoded once and reused while they do not change', () => {
    const s = message('StatusResponse');
    const a = s.ours({ version: 'v2', healthz: 'ok', key_id: 'k1' } as never);
    const b = s.ours({ version: 'v2', healthz: 'ok', key_id: 'k1' } as never);
    const c = s.ours({ version: 'v2', healthz: 'ok', key_id: 'k2' } as never);
    expect(b).toBe(a);
    expect(c).not.toBe(a);
    expect(c).toEqual(s.ref({ version: 'v2', healthz: 'ok', key_id: 'k2' } as never));
  });
});
