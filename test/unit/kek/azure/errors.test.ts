/** Azure provider internals: attributes → KeyState, error classification, Retry-After, kids, azure.json. */
import { afterAll, describe, expect, it } from '@jest/globals';
import { RestError } from '@azure/core-rest-pipeline';
import { azureSchema } from '../../../src/config/providers/azure.js';
import { buildCredential, parseCloudConfig } from '../../../src/kek/azure/credentials.js';
import { classifyAzureError, retryAfterMs, scrub } from '../../../src/kek/azure/errors.js';
import { keyResource, parseKid, sameKey } from '../../../src/kek/azure/ids.js';
import {
  isPurgeable,
  lacksPurgeProtection,
  stateOf,
  type VersionFacts,
} from '../../../src/kek/azure/state.js';
import { TempDir } from '../../fakes/azure-keyvault/harness.js';

const dir = new TempDir();
afterAll(() => dir.remove());

const base: VersionFacts = {
  version: 'abc',
  kid: 'https://v.vault.azure.net/keys/k/abc',
  keyType: 'RSA',
  enabled: true,
  createdOn: new Date('2026-01-01T00:00:00Z'),
};
const now = new Date('2026-06-01T00:00:00Z');

describe('stateOf', () => {
  it.each<[Partial<VersionFacts>, string]>([
    [{}, 'enabled'],
    [{ enabled: false }, 'disabled'],
    [{ expiresOn: new Date('2026-05-31T23:59:59Z') }, 'expired'],
    [{ expiresOn: new Date('2026-06-01T00:00:00Z') }, 'expired'],
    [{ expiresOn: new Date('2026-06-01T00:00:01Z') }, 'enabled'],
    [{ notBefore: new Date('2026-06-01T00:00:01Z') }, 'not_yet_valid'],
    [{ notBefore: new Date('2026-05-01T00:00:00Z') }, 'enabled'],
    [
      { deletedOn: new Date('2026-05-30T00:00:00Z'), scheduledPurgeDate: new Date('2026-08-28T00:00:00Z') },
      'pending_deletion',
    ],
    [{ enabled: false, deletedOn: new Date('2026-05-30T00:00:00Z') }, 'pending_deletion'],
    [{ enabled: false, expiresOn: new Date('2026-01-02T00:00:00Z') }, 'disabled'],
  ])('%j → %s', (attrs, state) => {
    const v = stateOf({ ...base, ...attrs }, now);
    expect(v.state).toBe(state);
    if (state !== 'enabled') expect(v.detail).toContain('abc');
  });

  it('recovery levels', () => {
    expect(isPurgeable('Purgeable')).toBe(true);
    expect(isPurgeable('Recoverable+Purgeable')).toBe(false);
    expect(lacksPurgeProtection('Recoverable+Purgeable')).toBe(true);
    expect(lacksPurgeProtection('Recoverable')).toBe(false);
    expect(lacksPurgeProtection('CustomizedRecoverable+ProtectedSubscription')).toBe(false);
  });
});

function rest(
  status: number | undefined,
  code?: string,
  message = 'svc message',
  headers: Record<string, string> = {},
  details?: unknown,
): RestError {
  const e = new RestError(message, {
    statusCode: status,
    code,
    response:
      status === undefined
        ? undefined
        : ({ status, headers: { get: (n: string) => headers[n.toLowerCase()] }, request: {} } as never),
  });
  if (details) e.details = details;
  return e;
}

describe('classifyAzureError', () => {
  const ctx = { operation: 'wrapKey' as const, what: 'https://v.vault.azure.net/keys/k/abc' };
  it.each<[RestError, string, boolean]>([
    [rest(401, 'Unauthorized'), 'permission_denied', false],
    [rest(403, 'Forbidden', 'The user does not have keys wrap key permission'), 'permission_denied', false],
    [
      rest(
        403,
        'Forbidden',
        'Operation wrapKey is not allowed on a disabled key.',
        {},
        { error: { innerError: { code: 'KeyDisabled' } } },
      ),
      'key_disabled',
      false,
    ],
    [rest(404, 'KeyNotFound'), 'unknown_key', false],
    [rest(429, 'Throttled'), 'throttled', true],
    [rest(500), 'unavailable', true],
    [rest(503, 'ServiceUnavailable'), 'unavailable', true],
    [rest(408), 'unavailable', true],
    [rest(400, 'BadParameter'), 'invalid_input', false],
    [rest(undefined, 'ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:1'), 'unavailable', true],
    [
      rest(undefined, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate'),
      'unavailable',
      false,
    ],
  ])('%s → %s', (err, kind, retryable) => {
    const e = classifyAzureError(err, ctx);
    expect(e.kind).toBe(kind);
    expect(e.retryable).toBe(retryable);
    expect(e.message).toContain(ctx.what);
  });

  it('400 on unwrap means the wrapped DEK does not authenticate', () => {
    expect(classifyAzureError(rest(400, 'BadParameter'), { ...ctx, operation: 'unwrapKey' }).kind).toBe(
      'unauthenticated',
    );
  });

  it('never keeps the RestError (it holds the request body) as the cause', () => {
    const err = rest(500);
    (err as unknown as { request: unknown }).request = { body: '{"alg":"RSA-OAEP-256","value":"SECRETDEK"}' };
    const e = classifyAzureError(err, ctx);
    expect(e.cause).not.toBe(err);
    expect(JSON.stringify({ m: e.message, c: (e.cause as Error).message })).not.toContain('SECRETDEK');
  });

  it('identity errors', () => {
    const unavailable = Object.assign(new Error('EnvironmentCredential is unavailable'), {
      name: 'CredentialUnavailableError',
    });
    expect(classifyAzureError(unavailable, ctx).kind).toBe('permission_denied');
    const refused = Object.assign(new Error('invalid_client: AADSTS7000215 for secret hunter2hunter2'), {
      name: 'AuthenticationError',
      statusCode: 401,
    });
    const e = classifyAzureError(refused, { ...ctx, secrets: ['hunter2hunter2'] });
    expect(e.kind).toBe('permission_denied');
    expect(e.message).not.toContain('hunter2hunter2');
    const down = Object.assign(new Error('x'), { name: 'AuthenticationError', statusCode: 503 });
    expect(classifyAzureError(down, ctx)).toMatchObject({ kind: 'unavailable', retryable: true });
  });

  it('scrub removes bearer tokens and JWTs and truncates', () => {
    expect(scrub('Authorization: Bearer abc.def-ghi')).toBe('Authorization: Bearer [redacted]');
    expect(scrub('token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig here')).toBe('token [redacted-jwt] here');
    expect(scrub('x'.repeat(400)).length).toBeLessThanOrEqual(301);
  });
});

describe('retryAfterMs', () => {
  it.each<[Record<string, string>, number | undefined]>([
    [{ 'retry-after': '2' }, 2000],
    [{ 'retry-after': '0.5' }, 500],
    [{ 'retry-after-ms': '250' }, 250],
    [{ 'x-ms-retry-after-ms': '75' }, 75],
    [{ 'retry-after': new Date(Date.parse('2026-01-01T00:00:03Z')).toUTCString() }, 3000],
    [{ 'retry-after': 'soon' }, undefined],
    [{}, undefined],
  ])('%j → %s', (headers, ms) => {
    expect(retryAfterMs(rest(429, 'Throttled', 'x', headers), Date.parse('2026-01-01T00:00:00Z'))).toBe(ms);
  });
});

describe('ids', () => {
  it('parses kids and compares keys', () => {
    expect(parseKid('https://V.vault.azure.net/keys/kek/0123abc')).toEqual({
      vaultUrl: 'https://v.vault.azure.net',
      name: 'kek',
      version: '0123abc',
    });
    expect(parseKid('https://v.vault.azure.net/keys/kek')).toEqual({
      vaultUrl: 'https://v.vault.azure.net',
      name: 'kek',
      version: undefined,
    });
    expect(parseKid('https://v.vault.azure.net/secrets/kek/1')).toBeUndefined();
    expect(parseKid('not a url')).toBeUndefined();
    expect(
      sameKey(parseKid('https://v.vault.azure.net:443/keys/KEK')!, 'https://v.vault.azure.net', 'kek'),
    ).toBe(true);
    expect(sameKey(parseKid('https://w.vault.azure.net/keys/kek')!, 'https://v.vault.azure.net', 'kek')).toBe(
      false,
    );
    expect(keyResource('https://v.vault.azure.net', 'kek')).toBe('https://v.vault.azure.net/keys/kek');
  });
});

describe('azure.json', () => {
  const cfg = (file: string) =>
    azureSchema.parse({ vaultUrl: 'https://kv1.vault.azure.net', keyName: 'kek', cloudConfigFile: file });

  it('parses the cloud-provider fields and rejects bad types without echoing values', () => {
    expect(
      parseCloudConfig('{"tenantId":"t","aadClientId":"c","useManagedIdentityExtension":"true"}', 'f'),
    ).toEqual({
      tenantId: 't',
      aadClientId: 'c',
      useManagedIdentityExtension: true,
    });
    expect(() => parseCloudConfig('{"aadClientSecret": 12345678}', 'f')).toThrow(
      /"aadClientSecret" must be a string/,
    );
    expect(() => parseCloudConfig('{"aadClientSecret": "sup3rs3cret"', 'f')).toThrow(/not valid JSON/);
    try {
      parseCloudConfig('{"aadClientSecret": "sup3rs3cret"', 'f');
    } catch (e) {
      expect((e as Error).message).not.toContain('sup3rs3cret');
    }
  });

  it('user-assigned managed identity', () => {
    const f = dir.file(
      'mi.json',
      JSON.stringify({
        cloud: 'AzureUSGovernmentCloud',
        useManagedIdentityExtension: true,
        userAssignedIdentityID: 'mi-client-id',
      }),
    );
    const b = buildCredential(cfg(f));
    expect(b.kind).toBe('managed-identity');
    expect(b.description).toBe('user-assigned managed identity mi-client-id');
    expect(b.authorityHost).toBe('https://login.microsoftonline.us');
  });

  it('system-assigned managed identity', () => {
    const f = dir.file('smi.json', JSON.stringify({ useManagedIdentityExtension: true }));
    expect(buildCredential(cfg(f)).description).toBe('system-assigned managed identity');
  });

  it('service principal: the secret is kept for scrubbing but not in the description', () => {
    const f = dir.file(
      'sp.json',
      JSON.stringify({
        cloud: 'AzureChinaCloud',
        tenantId: 't',
        aadClientId: 'app',
        aadClientSecret: 'very-secret-value',
      }),
    );
    const b = buildCredential(cfg(f));
    expect(b.kind).toBe('client-secret');
    expect(b.secrets).toEqual(['very-secret-value']);
    expect(b.description).not.toContain('very-secret-value');
    expect(b.authorityHost).toBe('https://login.chinacloudapi.cn');
  });

  it('explains what is wrong', () => {
    expect(() => buildCredential(cfg(dir.file('none.json', '{"tenantId":"t"}')))).toThrow(
      /names no identity/,
    );
    expect(() =>
      buildCredential(
        cfg(dir.file('pfx.json', '{"tenantId":"t","aadClientId":"a","aadClientCertPath":"/c.pfx"}')),
      ),
    ).toThrow(/unencrypted PEM/);
    expect(() =>
      buildCredential(cfg(dir.file('cloud.json', '{"cloud":"Mars","useManagedIdentityExtension":true}'))),
    ).toThrow(/unknown "cloud"/);
    expect(() => buildCredential(cfg('/nonexistent/azure.json'))).toThrow(
      /cannot read the cloud config \/nonexistent\/azure.json \(ENOENT\)/,
    );
  });
});
