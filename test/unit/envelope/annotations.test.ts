import { describe, expect, it } from '@jest/globals';
import {
  ANNOTATION_DEK,
  ANNOTATION_KEK,
  MAX_ANNOTATIONS_BYTES,
  annotationErrors,
  canonicalKek,
  decodeAnnotations,
  encodeAnnotations,
  fqdnErrors,
} from '../../../src/envelope/annotations.js';
import { InvalidInputError } from '../../../src/errors.js';
import type { KekRef } from '../../../src/kek/types.js';

const label = (n: number, ch = 'a'): string => ch.repeat(n);
/** A name of exactly `len` characters made of labels of at most 63. */
function nameOfLength(len: number): string {
  const parts: string[] = [];
  let left = len;
  while (left > 0) {
    const take = Math.min(63, left === 64 ? 62 : left);
    parts.push(label(take));
    left -= take;
    if (left > 0) left -= 1; // the dot
  }
  const s = parts.join('.');
  expect(s).toHaveLength(len);
  return s;
}

describe('fqdnErrors (kube-apiserver IsFullyQualifiedDomainName)', () => {
  it.each([
    ['Foo.example.com', 'uppercase'],
    ['example', 'single label'],
    ['a/b.example.com', 'slash'],
    ['under_score.example.com', 'underscore'],
    ['', 'empty'],
    ['.', 'only a dot'],
    ['a..b', 'empty label'],
    ['-a.example.com', 'leading hyphen'],
    ['a-.example.com', 'trailing hyphen'],
    ['a.b..', 'two trailing dots'],
    ['a b.example.com', 'space'],
  ])('flags %j (%s)', (name) => {
    expect(fqdnErrors(name).length).toBeGreaterThan(0);
  });

  it('flags a 254-character name and a 64-character label', () => {
    const n254 = nameOfLength(254);
    expect(fqdnErrors(n254).join()).toContain('253');
    expect(fqdnErrors(`${label(64)}.example.com`).length).toBeGreaterThan(0);
    expect(fqdnErrors(`example.${label(64)}`).length).toBeGreaterThan(0);
  });

  it.each(['a.b', 'x-1.example.com.', 'kek.k8s-kms-plugin.io', 'dek.k8s-kms-plugin.io', '0.1', 'a-b-c.d-e'])(
    'accepts %j',
    (name) => {
      expect(fqdnErrors(name)).toEqual([]);
    },
  );

  it('accepts a 253-character name, a 253-character name plus one trailing dot, and a 63-character label', () => {
    const n253 = nameOfLength(253);
    expect(fqdnErrors(n253)).toEqual([]);
    expect(fqdnErrors(`${n253}.`)).toEqual([]);
    expect(fqdnErrors(`${label(63)}.example.com`)).toEqual([]);
    expect(fqdnErrors(`example.${label(63)}`)).toEqual([]);
  });

  it('names the two-segment rule for a single label', () => {
    expect(fqdnErrors('example').join()).toMatch(/two segments/);
  });

  it('our own annotation keys pass', () => {
    expect(fqdnErrors(ANNOTATION_KEK)).toEqual([]);
    expect(fqdnErrors(ANNOTATION_DEK)).toEqual([]);
  });
});

describe('annotationErrors (validateAnnotations)', () => {
  const key = 'a.b';
  it('Σ(key+value) = 32768 passes and 32769 fails', () => {
    expect(MAX_ANNOTATIONS_BYTES).toBe(32768);
    expect(annotationErrors({ [key]: Buffer.alloc(32768 - key.length) })).toEqual([]);
    const errs = annotationErrors({ [key]: Buffer.alloc(32769 - key.length) });
    expect(errs).toHaveLength(1);
    expect(errs[0]).toContain('32769');
  });

  it('sums over several annotations', () => {
    expect(annotationErrors({ 'a.b': Buffer.alloc(16381), 'c.d': Buffer.alloc(16381) })).toEqual([]);
    expect(annotationErrors({ 'a.b': Buffer.alloc(16381), 'c.d': Buffer.alloc(16382) })).toHaveLength(1);
  });

  it('flags bad keys, and only those', () => {
    const errs = annotationErrors({
      'Foo.example.com': Buffer.from('x'),
      'ok.example.com': Buffer.from('y'),
    });
    expect(errs.length).toBeGreaterThan(0);
    for (const e of errs) expect(e).toContain('"Foo.example.com"');
  });

  it('counts key bytes as UTF-8', () => {
    const k = 'ü.b'; // 4 bytes in UTF-8, 3 UTF-16 units
    const errs = annotationErrors({ [k]: Buffer.alloc(32768 - 3) });
    expect(errs.some((e) => e.includes('32769 bytes'))).toBe(true);
  });

  it('the encoded annotations of a typical ref pass', () => {
    const ref: KekRef = {
      provider: 'aws',
      key: 'arn:aws:kms:eu-west-1:111122223333:key/abcd',
      version: 'v1',
      unique: '2026-01-01',
    };
    expect(annotationErrors(encodeAnnotations(ref, 0, Buffer.alloc(200, 7)))).toEqual([]);
  });
});

describe('encode/decode', () => {
  const ref: KekRef = {
    provider: 'local',
    key: 'file-id-1234',
    version: '3',
    unique: '2026-01-01T00:00:00.000Z',
  };
  const wrapped = Buffer.from('wrapped-bytes-0123456789');

  it('round trips ref, generation and wrapped bytes', () => {
    const a = encodeAnnotations(ref, 7, wrapped);
    expect(Object.keys(a).sort()).toEqual([ANNOTATION_DEK, ANNOTATION_KEK]);
    const d = decodeAnnotations(a);
    expect(d.ref).toEqual(ref);
    expect(d.generation).toBe(7);
    expect(d.wrapped.equals(wrapped)).toBe(true);
    expect(d.kekBytes.equals(a[ANNOTATION_KEK])).toBe(true);
  });

  it('round trips a ref without unique (u omitted)', () => {
    const r: KekRef = {
      provider: 'gcp',
      key: 'projects/p/locations/l/keyRings/r/cryptoKeys/k',
      version: '1',
    };
    const a = encodeAnnotations(r, 0, wrapped);
    expect(a[ANNOTATION_KEK].toString()).toBe(
      '{"g":0,"k":"projects/p/locations/l/keyRings/r/cryptoKeys/k","p":"gcp","v":"1"}',
    );
    expect(decodeAnnotations(a).ref).toEqual(r);
    expect(canonicalKek({ ...r, unique: '' }, 0).equals(a[ANNOTATION_KEK])).toBe(true);
  });

  it('canonical form is sorted and compact', () => {
    expect(canonicalKek(ref, 1).toString()).toBe(
      '{"g":1,"k":"file-id-1234","p":"local","u":"2026-01-01T00:00:00.000Z","v":"3"}',
    );
  });

  it('copies the wrapped bytes (mutating the input does not change the annotation)', () => {
    const w = Buffer.from(wrapped);
    const a = encodeAnnotations(ref, 0, w);
    w.fill(0);
    expect(a[ANNOTATION_DEK].equals(wrapped)).toBe(true);
  });

  const good = (): Record<string, Uint8Array> => encodeAnnotations(ref, 0, wrapped);
  const kekWith = (json: string): Record<string, Uint8Array> => ({
    ...good(),
    [ANNOTATION_KEK]: Buffer.from(json),
  });

  it.each<[string, () => Record<string, Uint8Array> | undefined, RegExp]>([
    ['undefined annotations', () => undefined, /required/],
    ['an extra key', () => ({ ...good(), 'x.example.com': Buffer.from('1') }), /unexpected annotation/],
    ['missing kek', () => ({ [ANNOTATION_DEK]: wrapped }), /required/],
    ['missing dek', () => ({ [ANNOTATION_KEK]: good()[ANNOTATION_KEK] }), /required/],
    ['empty dek', () => ({ ...good(), [ANNOTATION_DEK]: Buffer.alloc(0) }), /required|invalid size/],
    ['oversize dek', () => ({ ...good(), [ANNOTATION_DEK]: Buffer.alloc(8193, 1) }), /invalid size/],
    ['oversize kek', () => kekWith(`{"g":0,"k":"${'k'.repeat(4100)}","p":"local","v":"3"}`), /invalid size/],
    ['non-JSON kek', () => kekWith('not json'), /not valid JSON/],
    ['kek JSON array', () => kekWith('[1,2]'), /not a JSON object/],
    ['kek JSON null', () => kekWith('null'), /not a JSON object/],
    [
      'whitespace (non-canonical)',
      () => kekWith('{"g":0, "k":"file-id-1234","p":"local","u":"2026-01-01T00:00:00.000Z","v":"3"}'),
      /canonical/,
    ],
    [
      'key order (non-canonical)',
      () => kekWith('{"k":"file-id-1234","g":0,"p":"local","u":"2026-01-01T00:00:00.000Z","v":"3"}'),
      /canonical/,
    ],
    ['empty unique', () => kekWith('{"g":0,"k":"file-id-1234","p":"local","u":"","v":"3"}'), /bad unique/],
    [
      'unknown field',
      () => kekWith('{"g":0,"k":"file-id-1234","p":"local","v":"3","x":1}'),
      /unknown fields/,
    ],
    ['unknown provider', () => kekWith('{"g":0,"k":"file-id-1234","p":"hsm","v":"3"}'), /unknown provider/],
    [
      'negative generation',
      () => kekWith('{"g":-1,"k":"file-id-1234","p":"local","v":"3"}'),
      /bad generation/,
    ],
    [
      'fractional generation',
      () => kekWith('{"g":1.5,"k":"file-id-1234","p":"local","v":"3"}'),
      /bad generation/,
    ],
    [
      'string generation',
      () => kekWith('{"g":"0","k":"file-id-1234","p":"local","v":"3"}'),
      /bad generation/,
    ],
    ['missing generation', () => kekWith('{"k":"file-id-1234","p":"local","v":"3"}'), /bad generation/],
    ['empty key', () => kekWith('{"g":0,"k":"","p":"local","v":"3"}'), /bad key/],
    ['missing version', () => kekWith('{"g":0,"k":"file-id-1234","p":"local"}'), /bad version/],
    ['numeric version', () => kekWith('{"g":0,"k":"file-id-1234","p":"local","v":3}'), /bad version/],
  ])('rejects %s with InvalidInputError', (_name, make, msg) => {
    let caught: unknown;
    try {
      decodeAnnotations(make());
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(InvalidInputError);
    expect((caught as Error).message).toMatch(msg);
  });

  it('accepts the boundaries of the size limits', () => {
    expect(() => decodeAnnotations({ ...good(), [ANNOTATION_DEK]: Buffer.alloc(8192, 1) })).not.toThrow();
  });

  it('error messages do not echo the wrapped bytes', () => {
    const secretish = Buffer.from('SECRETSECRETSECRET');
    try {
      decodeAnnotations({ [ANNOTATION_KEK]: Buffer.from('garbage'), [ANNOTATION_DEK]: secretish });
      throw new Error('expected a throw');
    } catch (err) {
      expect((err as Error).message).not.toContain('SECRET');
    }
  });
});
