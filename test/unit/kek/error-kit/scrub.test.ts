/** The one scrubber (src/kek/error-kit/scrub.ts): every rule, and the rules of the three scrubbers it replaced. */
import { describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';

import { scrub } from '../../../../src/kek/error-kit/scrub.js';

describe('scrub: each rule', () => {
  it('removes the exact secrets a provider registers (4 characters or more)', () => {
    expect(scrub('refused secret hunter2hunter2 for app', { secrets: ['hunter2hunter2'] })).toBe(
      'refused secret [redacted] for app',
    );
    expect(scrub('abc stays', { secrets: ['abc'] })).toBe('abc stays'); // too short to mean anything
  });

  it('removes PEM blocks, also when the END line was cut off', () => {
    const out = scrub('key -----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN\n-----END PRIVATE KEY----- done');
    expect(out).toBe('key [redacted] done');
    expect(scrub('-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA')).toBe('[redacted]');
    expect(scrub('-----BEGIN CERTIFICATE-----\nMIIBszCCAV\n-----END CERTIFICATE-----')).toBe('[redacted]');
  });

  it('removes bearer tokens, keeping the word', () => {
    expect(scrub('Authorization: Bearer abc.def-ghi')).toBe('Authorization: Bearer [redacted]');
    expect(scrub('bearer x/y+z= next')).toBe('Bearer [redacted] next');
  });

  it('removes JWTs', () => {
    expect(scrub('token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig here')).toBe('token [redacted] here');
    expect(scrub('jwt eyJhbGciOi.eyJzdWIiOi.sig123,')).toBe('jwt [redacted],');
  });

  it('removes Vault tokens (hvs./hvb./hvr. and legacy s./b./r.)', () => {
    for (const t of [
      'hvs.CAESIJ1abcdefghijk',
      'hvb.AAAAAQJ1abcdefgh',
      'hvr.abcdefghijkl',
      's.abcdefghijklmnop',
      'b.AAAAAQabcdefgh',
    ])
      expect(scrub(`denied ${t} now`)).toBe('denied [redacted] now');
    expect(scrub('keys.abcdefghij stays')).toBe('keys.abcdefghij stays'); // not a token: part of a word
  });

  it('removes Google access tokens and API keys', () => {
    expect(scrub('token ya29.a0AfH6SMBx-y_z.w')).toBe('token [redacted]');
    expect(scrub(`key AIza${'B'.repeat(35)} used`)).toBe('key [redacted] used');
  });

  it('removes AWS access key ids and session tokens', () => {
    expect(scrub('The AWS Access Key Id AKIAIOSFODNN7EXAMPLE does not exist')).toBe(
      'The AWS Access Key Id [redacted] does not exist',
    );
    expect(scrub('key ASIAY34FZKBOKMUTVV7A expired')).toBe('key [redacted] expired');
    expect(scrub('token IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJH end')).toBe('token [redacted] end');
    expect(scrub('token FwoGZXIvYXdzEBYaDFak3 end')).toBe('token [redacted] end');
  });

  it('removes credential fields in JSON, header and k=v form', () => {
    const out = scrub(
      '{"access_token":"tok1","client_secret": "sec2", "private_key_id":"pk3"} refresh_token=rt4 X-Vault-Token: vt5 aws_secret_access_key = ak6 secret_id=si7 password:pw8',
    );
    for (const s of ['tok1', 'sec2', 'pk3', 'rt4', 'vt5', 'ak6', 'si7', 'pw8']) expect(out).not.toContain(s);
    expect(out).toContain('"access_token":[redacted]');
    expect(out).toContain('refresh_token=[redacted]');
  });

  it('removes signature and token query parameters, keeping the rest of the URL', () => {
    const out = scrub(
      'redirected to https://v.example/keys/k?api-version=7.4&sig=AbC%2Bd&se=2030&token=t0k&X-Amz-Signature=abcd&X-Amz-Security-Token=FQo&X-Amz-Credential=AKID%2F2020&code=c0de',
    );
    expect(out).toBe(
      'redirected to https://v.example/keys/k?api-version=7.4&sig=[redacted]&se=2030&token=[redacted]&X-Amz-Signature=[redacted]&X-Amz-Security-Token=[redacted]&X-Amz-Credential=[redacted]&code=[redacted]',
    );
  });

  it('removes base64, base64url and hex blobs long enough to be key material', () => {
    for (let i = 0; i < 100; i += 1) {
      const b64 = randomBytes(32).toString('base64');
      const url = randomBytes(32).toString('base64url');
      const awsSecret = randomBytes(30).toString('base64');
      const hex = randomBytes(32).toString('hex');
      for (const blob of [b64, url, awsSecret, hex]) {
        const out = scrub(`material ${blob} end`);
        expect(out).toBe('material [redacted] end');
      }
    }
    expect(scrub('secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY here')).toBe('secret [redacted] here');
  });

  it('keeps resource names, ARNs, URLs and ids that name the key', () => {
    for (const name of [
      'projects/my-project-123/locations/us-east1/keyRings/k8s-ring/cryptoKeys/kek/cryptoKeyVersions/12',
      'projects/p/locations/global/keyRings/ring/cryptoKeys/cryptoKeyForProductionClusters',
      'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
      'https://v.vault.azure.net/keys/kek/0123456789abcdef0123456789abcdef',
      'https://vault:8200/v1/transit/keys/kms-plugin-key-with-a-rather-long-name/rotate',
      'aws-0123456789abcdef0123456789abcdef01234567',
      'AADSTS7000215 invalid client secret provided',
    ])
      expect(scrub(`using ${name}`)).toBe(`using ${name}`);
  });
});

describe('scrub: shape of the result', () => {
  it('collapses whitespace, keeps the first line on request, and caps the length', () => {
    expect(scrub('  a\n\tb  ')).toBe('a b');
    expect(scrub('first\nsecond', { firstLine: true })).toBe('first');
    expect(scrub('x'.repeat(1000)).length).toBeLessThanOrEqual(301);
    expect(scrub('x'.repeat(400)).length).toBeLessThanOrEqual(301);
    expect(scrub('x'.repeat(1000), { max: 50 })).toBe(`${'x'.repeat(50)}…`);
  });

  it('a secret spanning lines is removed before the first line is taken', () => {
    expect(
      scrub('-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\nrest', { firstLine: true }),
    ).toBe('[redacted]');
  });
});

// The assertions of the three scrubbers this one replaced (gcp/classify.ts, azure/errors.ts,
// vault/http.ts), moved here unchanged except the one noted.
describe('scrub: the rules of the former provider scrubbers', () => {
  it('gcp: bearer tokens, JWTs, PEM blocks and token fields, and bounds the length', () => {
    const text = scrub(
      'Bearer abc.def ya29.token eyJhbGciOi.eyJzdWIiOi.sig "private_key": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----" access_token=zzz',
    );
    for (const s of ['abc.def', 'ya29.token', 'eyJhbGciOi', 'MIIE', 'zzz']) expect(text).not.toContain(s);
    expect(scrub('x'.repeat(1000)).length).toBeLessThanOrEqual(301);
  });

  it('azure: bearer tokens and JWTs, and truncates', () => {
    expect(scrub('Authorization: Bearer abc.def-ghi')).toBe('Authorization: Bearer [redacted]');
    // Was '[redacted-jwt]': one scrubber, one marker.
    expect(scrub('token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig here')).toBe('token [redacted] here');
    expect(scrub('x'.repeat(400)).length).toBeLessThanOrEqual(301);
  });

  it('vault: given secrets, Vault tokens and JWTs, and caps length', () => {
    const out = scrub(
      'denied hvs.CAESIJ1abcdefghijk and s.abcdefghijklmnop, jwt eyJhbGciOi.eyJzdWIiOi.sig123, secret my-secret-id',
      { secrets: ['my-secret-id'] },
    );
    expect(out).not.toMatch(/hvs\.|s\.abcdef|eyJ|my-secret-id/);
    expect(out.match(/\[redacted\]/g)).toHaveLength(4);
    expect(scrub('x'.repeat(1000)).length).toBeLessThanOrEqual(301);
  });
});
