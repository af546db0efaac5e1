/** GCP provider: the ref's `unique` part (src/kek/gcp/ref.ts). */
import { describe, expect, it } from '@jest/globals';

import { aadFingerprint, decodeUnique, encodeUnique } from '../../../../src/kek/gcp/ref.js';

describe('gcp ref unique part', () => {
  it('encodes the creation time and an AAD fingerprint, and decodes them back', () => {
    const a = aadFingerprint(Buffer.from('cluster-a'));
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(aadFingerprint(Buffer.from('cluster-a'))).toBe(a);
    expect(aadFingerprint(Buffer.from('cluster-b'))).not.toBe(a);
    const u = encodeUnique('2026-11-25T18:01:26.000000042Z', a);
    expect(u).toBe(`created=2026-11-25T18:01:26.000000042Z;aad=${a}`);
    expect(decodeUnique(u)).toEqual({ created: '2026-11-25T18:01:26.000000042Z', aad: a });
    expect(decodeUnique(undefined)).toEqual({});
    expect(decodeUnique('garbage;=x;other=1')).toEqual({});
  });
});
