/** GCP provider: version states, Timestamps and references (src/kek/gcp/version.ts). */
import { describe, expect, it } from '@jest/globals';

import type { CryptoKeyVersion } from '../../../../src/kek/gcp/api.js';

import { aadFingerprint } from '../../../../src/kek/gcp/ref.js';
import { formatTimestamp, mapVersionState, primaryVersionInfo } from '../../../../src/kek/gcp/version.js';
import { KEY, V1, thrown } from './support.js';

const FP = aadFingerprint(Buffer.from('k8s-kms-plugin/dek/v1'));

describe('gcp version states and references', () => {
  it.each([
    ['ENABLED', 'enabled'],
    ['DISABLED', 'disabled'],
    ['DESTROY_SCHEDULED', 'pending_deletion'],
    ['DESTROYED', 'destroyed'],
    ['PENDING_EXTERNAL_DESTRUCTION', 'destroyed'],
    ['EXTERNAL_DESTRUCTION_FAILED', 'destroyed'],
    ['PENDING_IMPORT', 'pending_import'],
    ['IMPORT_FAILED', 'disabled'],
    ['GENERATION_FAILED', 'disabled'],
    ['PENDING_GENERATION', 'unavailable'],
    ['CRYPTO_KEY_VERSION_STATE_UNSPECIFIED', 'unavailable'],
    ['SOMETHING_NEW', 'unavailable'],
    [undefined, 'unavailable'],
  ])('%s -> %s', (state, expected) => {
    expect(mapVersionState(state)).toBe(expected);
  });

  it('formats Timestamps deterministically with nine fractional digits, whatever type seconds has', () => {
    expect(formatTimestamp({ seconds: '1795629686', nanos: 5 })).toBe('2026-11-25T18:01:26.000000005Z');
    expect(formatTimestamp({ seconds: 1795629686, nanos: 123456789 })).toBe('2026-11-25T18:01:26.123456789Z');
    expect(formatTimestamp({ seconds: 1795629686 })).toBe('2026-11-25T18:01:26.000000000Z');
    expect(formatTimestamp(undefined)).toBeUndefined();
    expect(formatTimestamp({ seconds: 'x' })).toBeUndefined();
    expect(formatTimestamp({ seconds: 1, nanos: 1e9 })).toBeUndefined();
  });

  const primary: CryptoKeyVersion = {
    name: V1,
    state: 'ENABLED',
    createTime: { seconds: '1795629686', nanos: 42 },
    protectionLevel: 'HSM',
  };

  it('builds the reference from the primary version id and its createTime', () => {
    const info = primaryVersionInfo(KEY, { name: KEY, purpose: 'ENCRYPT_DECRYPT', primary }, FP);
    expect(info.ref).toEqual({
      provider: 'gcp',
      key: KEY,
      version: '1',
      unique: `created=2026-11-25T18:01:26.000000042Z;aad=${FP}`,
    });
    expect(info.ordinal).toBe(1);
    expect(info.state).toBe('enabled');
    expect(info.detail).toBeUndefined();
    const v12 = primaryVersionInfo(
      KEY,
      {
        name: KEY,
        primary: { ...primary, name: `${KEY}/cryptoKeyVersions/12` },
      },
      FP,
    );
    expect(v12.ordinal).toBe(12);
  });

  it('refuses inconsistent GetCryptoKey answers', () => {
    expect(thrown(() => primaryVersionInfo(KEY, { name: `${KEY}2`, primary }, FP)).kind).toBe('corrupt');
    expect(
      thrown(() => primaryVersionInfo(KEY, { name: KEY, purpose: 'ASYMMETRIC_SIGN', primary }, FP)).kind,
    ).toBe('invalid_input');
    expect(thrown(() => primaryVersionInfo(KEY, { name: KEY, primary: null }, FP)).kind).toBe('key_disabled');
    expect(
      thrown(() =>
        primaryVersionInfo(
          KEY,
          {
            name: KEY,
            primary: {
              ...primary,
              name: 'projects/x/locations/y/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1',
            },
          },
          FP,
        ),
      ).kind,
    ).toBe('corrupt');
    expect(
      thrown(() =>
        primaryVersionInfo(
          KEY,
          { name: KEY, primary: { ...primary, name: `${KEY}/cryptoKeyVersions/01` } },
          FP,
        ),
      ).kind,
    ).toBe('corrupt');
    expect(
      thrown(() => primaryVersionInfo(KEY, { name: KEY, primary: { ...primary, createTime: null } }, FP))
        .kind,
    ).toBe('corrupt');
  });

  it('explains non-enabled states', () => {
    const info = primaryVersionInfo(
      KEY,
      {
        name: KEY,
        primary: {
          ...primary,
          state: 'DESTROY_SCHEDULED',
          destroyTime: { seconds: 1798221686 },
        } as CryptoKeyVersion,
      },
      FP,
    );
    expect(info.state).toBe('pending_deletion');
    expect(info.detail).toBe(
      'CryptoKeyVersion 1 is scheduled for destruction at 2026-12-25T18:01:26Z; restore it (gcloud kms keys versions restore) or make another version primary',
    );
  });
});
