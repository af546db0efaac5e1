/** AWS provider: the ref's `unique` encoding and material versions (src/kek/aws/ref.ts). */
import {
  contextFingerprint,
  decodeUnique,
  encodeUnique,
  materialIdVersion,
  materialVersion,
} from '../../../../src/kek/aws/ref.js';

describe('ref encoding', () => {
  test('unique round-trips and the context fingerprint is order-independent and short', () => {
    const fp = contextFingerprint({ b: '2', a: '1' });
    expect(fp).toBe(contextFingerprint({ a: '1', b: '2' }));
    expect(fp).not.toBe(contextFingerprint({ a: '1', b: '3' }));
    expect(fp).toMatch(/^[0-9a-f]{16}$/);
    const u = encodeUnique({ created: '2026-01-01T00:00:00.000Z', alias: 'alias/x', ctx: fp });
    expect(u).toBe(`created=2026-01-01T00:00:00.000Z;alias=alias/x;ctx=${fp}`);
    expect(decodeUnique(u)).toEqual({ created: '2026-01-01T00:00:00.000Z', alias: 'alias/x', ctx: fp });
    expect(decodeUnique(encodeUnique({ created: 'c', ctx: fp }))).toEqual({ created: 'c', ctx: fp });
    expect(decodeUnique(undefined)).toEqual({});
  });

  test('material id version: prefixed, distinct from the date labels', () => {
    expect(materialIdVersion('abc123')).toBe('material:abc123');
    expect(materialIdVersion('abc123')).not.toBe(materialIdVersion('abc124'));
  });

  test('material version: the rotation date, or "original"', () => {
    expect(materialVersion(undefined)).toBe('original');
    expect(materialVersion(new Date(Date.UTC(2026, 10, 25, 12)))).toBe('2026-11-25T12:00:00.000Z');
  });
});
