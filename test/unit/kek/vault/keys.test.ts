/** Vault provider: transit key metadata → state, canonical key strings, ciphertext versions (src/kek/vault/keys.ts). */
import {
  canonicalKey,
  ciphertextVersion,
  currentState,
  makeRef,
  parseKeyMeta,
} from '../../../../src/kek/vault/keys.js';

describe('transit key helpers', () => {
  const raw = (over: Record<string, unknown> = {}): unknown => ({
    data: {
      type: 'aes256-gcm96',
      latest_version: 3,
      min_decryption_version: 1,
      min_encryption_version: 0,
      deletion_allowed: false,
      supports_encryption: true,
      keys: { '1': 1700000000, '2': 1700000100, '3': 1700000200 },
      ...over,
    },
  });

  test('canonical key string', () => {
    expect(canonicalKey({ address: 'https://v:8200', transitMount: 'transit', keyName: 'k' })).toBe(
      'https://v:8200/v1/transit/keys/k',
    );
    expect(
      canonicalKey({ address: 'https://v:8200', namespace: 'a/b', transitMount: 'kms/t', keyName: 'k' }),
    ).toBe('https://v:8200/v1/a/b/kms/t/keys/k');
  });

  test('latest version, creation time as unique, ordinal', () => {
    const meta = parseKeyMeta(raw(), 'x');
    expect(currentState(meta)).toEqual({ version: 3, state: 'enabled' });
    expect(makeRef('K', 3, meta, 'x')).toEqual({
      provider: 'vault',
      key: 'K',
      version: '3',
      unique: '1700000200',
    });
    expect(() => makeRef('K', 4, meta, 'x')).toThrow(/no creation time/);
  });

  test('asymmetric-style keys map with creation_time objects', () => {
    const meta = parseKeyMeta(
      raw({ keys: { '3': { creation_time: '2026-01-01T00:00:00Z', public_key: '' } } }),
      'x',
    );
    expect(makeRef('K', 3, meta, 'x').unique).toBe('2026-01-01T00:00:00Z');
  });

  test('states: deletion allowed, no encryption support', () => {
    expect(currentState(parseKeyMeta(raw({ deletion_allowed: true }), 'x')).state).toBe('pending_deletion');
    expect(
      currentState(parseKeyMeta(raw({ supports_encryption: false, type: 'ed25519' }), 'x')),
    ).toMatchObject({
      state: 'disabled',
      detail: expect.stringMatching(/ed25519/),
    });
  });

  test('malformed metadata is corrupt', () => {
    expect(() => parseKeyMeta({}, 'x')).toThrow(/no data/);
    expect(() => parseKeyMeta(raw({ latest_version: 'three' }), 'x')).toThrow(/latest_version/);
  });

  test('ciphertext version', () => {
    expect(ciphertextVersion('vault:v12:AAAA')).toBe(12);
    expect(ciphertextVersion('vault:v0:AAAA')).toBeUndefined();
    expect(ciphertextVersion('vault:12:AAAA')).toBeUndefined();
    expect(ciphertextVersion('vault:v1:AA AA')).toBeUndefined();
    expect(ciphertextVersion('vault:v1:')).toBeUndefined();
  });
});
