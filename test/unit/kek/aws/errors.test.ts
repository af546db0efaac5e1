/**
 * Pure parts of the aws provider: identifier parsing, key-state mapping, the ref's `unique`
 * encoding, and SDK error classification.
 */
import { classifyAwsError } from '../../../src/kek/aws/errors.js';
import { parseKeyArn, parseKeyIdentifier } from '../../../src/config/providers/aws-identifiers.js';
import {
  contextFingerprint,
  decodeUnique,
  encodeUnique,
  materialIdVersion,
  materialVersion,
} from '../../../src/kek/aws/ref.js';
import { mapKeyState } from '../../../src/kek/aws/state.js';
import { PluginError } from '../../../src/errors.js';

const KEY = '1234abcd-12ab-34cd-56ef-1234567890ab';
const ARN = `arn:aws:kms:eu-west-1:111122223333:key/${KEY}`;

describe('parseKeyIdentifier', () => {
  test('the four forms', () => {
    expect(parseKeyIdentifier(ARN)).toMatchObject({
      kind: 'key-arn',
      region: 'eu-west-1',
      account: '111122223333',
      partition: 'aws',
      keyId: KEY,
    });
    expect(parseKeyIdentifier(KEY)).toMatchObject({ kind: 'key-id', keyId: KEY });
    expect(parseKeyIdentifier('alias/k8s/prod_1-a')).toMatchObject({
      kind: 'alias-name',
      aliasName: 'alias/k8s/prod_1-a',
    });
    expect(parseKeyIdentifier('arn:aws-us-gov:kms:us-gov-west-1:111122223333:alias/k8s')).toMatchObject({
      kind: 'alias-arn',
      region: 'us-gov-west-1',
      partition: 'aws-us-gov',
      aliasName: 'alias/k8s',
    });
    expect(
      parseKeyIdentifier('arn:aws-cn:kms:cn-north-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab'),
    ).toMatchObject({
      kind: 'key-arn',
      region: 'cn-north-1',
    });
  });

  test.each([
    '',
    'arn:aws:s3:::bucket',
    `arn:aws:kms:eu-west-1:11112222333:key/${KEY}`,
    'KEY',
    KEY.toUpperCase(),
    'alias/',
    'alias/aws/s3',
  ])('%j is rejected with an explanation', (text) => {
    const r = parseKeyIdentifier(text);
    expect('error' in r && r.error.length > 10).toBe(true);
  });

  test('parseKeyArn accepts only key ARNs', () => {
    expect(parseKeyArn(ARN)).toEqual({
      partition: 'aws',
      region: 'eu-west-1',
      account: '111122223333',
      keyId: KEY,
    });
    expect(parseKeyArn('arn:aws:kms:eu-west-1:111122223333:alias/x')).toBeUndefined();
    expect(parseKeyArn(KEY)).toBeUndefined();
  });
});

describe('mapKeyState', () => {
  test.each([
    ['Enabled', true, 'enabled'],
    ['Disabled', false, 'disabled'],
    ['PendingDeletion', false, 'pending_deletion'],
    ['PendingReplicaDeletion', false, 'pending_deletion'],
    ['PendingImport', false, 'pending_import'],
    ['Unavailable', false, 'unavailable'],
    ['Creating', false, 'unavailable'],
    ['Updating', true, 'enabled'],
  ] as const)('%s → %s', (aws, enabled, state) => {
    const m = mapKeyState(aws, enabled, ARN);
    expect(m.state).toBe(state);
    if (state === 'enabled') expect(m.detail).toBeUndefined();
    else expect(m.detail).toContain(ARN);
  });

  test('pending deletion names the date and how to cancel', () => {
    const m = mapKeyState('PendingDeletion', false, ARN, new Date('2027-01-02T03:04:05.000Z'));
    expect(m.detail).toContain('2027-01-02T03:04:05.000Z');
    expect(m.detail).toContain(`cancel-key-deletion --key-id ${ARN}`);
  });
});

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

describe('classifyAwsError', () => {
  const meta = (status: number) => ({ httpStatusCode: status, attempts: 1, totalRetryDelay: 0 });
  // The shape of an SDK service exception (name, $fault, $metadata, message).
  const svc = (name: string, status: number, message = name): Error =>
    Object.assign(new Error(message), {
      name,
      $fault: status >= 500 ? 'server' : 'client',
      $metadata: meta(status),
    });

  test.each([
    [svc('ThrottlingException', 400, 'Rate exceeded'), 'throttled', true],
    [svc('SomethingNew', 429), 'throttled', true],
    [svc('AccessDeniedException', 400), 'permission_denied', false],
    [svc('UnrecognizedClientException', 400), 'permission_denied', false],
    [svc('InvalidCiphertextException', 400, ''), 'unauthenticated', false],
    [svc('com.amazonaws.kms#InvalidCiphertextException', 400, ''), 'unauthenticated', false],
    [svc('IncorrectKeyException', 400), 'unauthenticated', false],
    [svc('DisabledException', 400), 'key_disabled', false],
    [svc('KMSInvalidStateException', 400), 'key_disabled', false],
    [svc('NotFoundException', 400), 'unknown_key', false],
    [svc('InvalidKeyUsageException', 400), 'invalid_input', false],
    [svc('KMSInternalException', 500), 'unavailable', true],
    [svc('ServiceUnavailableException', 503), 'unavailable', true],
    [svc('KeyUnavailableException', 500), 'unavailable', true],
    [
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }),
      'unavailable',
      true,
    ],
    [new Error('AWS SDK error wrapper for TimeoutError: socket hang up'), 'unavailable', true],
    [
      Object.assign(new Error('Could not load credentials from any providers'), {
        name: 'CredentialsProviderError',
      }),
      'unavailable',
      true,
    ],
    [new TypeError('x is not a function'), 'internal', false],
  ])('%s → %s', (err, kind, retryable) => {
    const e = classifyAwsError(err, 'aws Encrypt key');
    expect(e).toBeInstanceOf(PluginError);
    expect(e.kind).toBe(kind);
    expect(e.retryable).toBe(retryable);
    expect(e.message.startsWith('aws Encrypt key: ')).toBe(true);
    expect(e.cause).toBe(err);
  });

  test('long AWS messages are cut to one short line', () => {
    const e = classifyAwsError(
      svc('AccessDeniedException', 400, `${'x'.repeat(1000)}\nsecond line`),
      'aws Decrypt k',
    );
    expect(e.message.length).toBeLessThan(700);
    expect(e.message).not.toContain('second line');
  });
});
