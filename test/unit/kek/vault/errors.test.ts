/**
 * Pure pieces of the Vault provider: error classification by status and operation, scrubbing of
 * secrets from Vault's messages, key metadata → state, canonical key strings, ciphertext parsing.
 */
import { classifyVaultError, VaultUnavailableError } from '../../../src/kek/vault/errors.js';
import { VaultHttpError, VaultProtocolError, scrub } from '../../../src/kek/vault/http.js';
import {
  canonicalKey,
  ciphertextVersion,
  currentState,
  makeRef,
  parseKeyMeta,
} from '../../../src/kek/vault/keys.js';
import type { VaultOperation } from '../../../src/kek/vault/errors.js';

const err = (status: number, ...errors: string[]): VaultHttpError =>
  new VaultHttpError(status, errors, 'POST', 'transit/x');
const kindOf = (e: unknown, op: VaultOperation = 'encrypt'): string =>
  classifyVaultError(e, op, 'vault op').kind;

describe('classifyVaultError', () => {
  test.each<[VaultHttpError, VaultOperation, string]>([
    [err(403, 'permission denied'), 'encrypt', 'permission_denied'],
    [err(403, 'permission denied'), 'login', 'permission_denied'],
    [err(429, 'rate limit quota exceeded'), 'decrypt', 'throttled'],
    [err(503, 'Vault is sealed'), 'decrypt', 'unavailable'],
    [err(500, 'internal error'), 'encrypt', 'unavailable'],
    [err(502), 'read_key', 'unavailable'],
    [err(412), 'read_key', 'unavailable'],
    [err(307), 'encrypt', 'unavailable'],
    [err(404), 'read_key', 'unknown_key'],
    [err(404, 'no handler for route "x"'), 'read_key', 'unknown_key'],
    [err(400, 'cipher: message authentication failed'), 'decrypt', 'unauthenticated'],
    [err(400, 'invalid ciphertext: no prefix'), 'decrypt', 'corrupt'],
    [
      err(400, 'ciphertext or signature version is disallowed by policy (too old)'),
      'decrypt',
      'key_disabled',
    ],
    [
      err(400, 'requested version for encryption is less than the minimum encryption key version'),
      'encrypt',
      'key_disabled',
    ],
    [err(400, 'encryption key not found'), 'encrypt', 'unknown_key'],
    [err(400, 'invalid role or secret ID'), 'login', 'permission_denied'],
    [err(400, 'lease is not renewable'), 'renew_self', 'permission_denied'],
    [err(400, 'something else'), 'encrypt', 'invalid_input'],
  ])('%s on %s → %s', (e, op, kind) => {
    expect(kindOf(e, op)).toBe(kind);
  });

  test('throttled and 5xx are retryable; permission, auth failures and TLS are not', () => {
    expect(classifyVaultError(err(429), 'encrypt', 'x').retryable).toBe(true);
    expect(classifyVaultError(err(503, 'Vault is sealed'), 'encrypt', 'x').retryable).toBe(true);
    expect(classifyVaultError(err(403), 'encrypt', 'x').retryable).toBe(false);
    expect(
      classifyVaultError(err(400, 'cipher: message authentication failed'), 'decrypt', 'x').retryable,
    ).toBe(false);
    const tls = Object.assign(new TypeError('fetch failed'), {
      cause: Object.assign(new Error('x'), { code: 'CERT_HAS_EXPIRED' }),
    });
    const c = classifyVaultError(tls, 'read_key', 'x');
    expect(c).toBeInstanceOf(VaultUnavailableError);
    expect(c.retryable).toBe(false);
  });

  test('sealed and standby carry a reason; network errors are unreachable', () => {
    expect(
      (classifyVaultError(err(503, 'Vault is sealed'), 'encrypt', 'x') as VaultUnavailableError).reason,
    ).toBe('sealed');
    expect(
      (
        classifyVaultError(
          err(500, 'local node not active but active cluster node not found'),
          'encrypt',
          'x',
        ) as VaultUnavailableError
      ).reason,
    ).toBe('standby');
    const refused = Object.assign(new TypeError('fetch failed'), {
      cause: Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }),
    });
    const c = classifyVaultError(refused, 'encrypt', 'x') as VaultUnavailableError;
    expect(c.reason).toBe('unreachable');
    expect(c.message).toMatch(/ECONNREFUSED/);
    expect(classifyVaultError(new VaultProtocolError('bad json'), 'encrypt', 'x').kind).toBe('corrupt');
    expect(classifyVaultError(new RangeError('bug'), 'encrypt', 'x').kind).toBe('internal');
  });
});

describe('scrub', () => {
  test('removes given secrets, Vault tokens and JWTs, and caps length', () => {
    const out = scrub(
      'denied hvs.CAESIJ1abcdefghijk and s.abcdefghijklmnop, jwt eyJhbGciOi.eyJzdWIiOi.sig123, secret my-secret-id',
      ['my-secret-id'],
    );
    expect(out).not.toMatch(/hvs\.|s\.abcdef|eyJ|my-secret-id/);
    expect(out.match(/\[redacted\]/g)).toHaveLength(4);
    expect(scrub('x'.repeat(1000)).length).toBeLessThanOrEqual(301);
  });
});

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
