import { describe, expect, it } from '@jest/globals';
import { loadConfig } from '../../../../src/config/load.js';
import { DEFAULT_GCP_AAD, cryptoKeyNameProblem, gcpSchema } from '../../../../src/config/providers/gcp.js';
import { configError } from '../../../support/config-error.js';

const KEY = 'projects/my-project/locations/europe-west1/keyRings/k8s/cryptoKeys/etcd';

describe('gcp config section', () => {
  it('accepts a CryptoKey name and fills safe defaults', () => {
    const c = gcpSchema.parse({ keyName: KEY });
    expect(c).toEqual({
      keyName: KEY,
      insecure: false,
      aad: DEFAULT_GCP_AAD,
      maxAttempts: 4,
      concurrency: 16,
      timeout: 10_000,
    });
  });

  it.each([
    'projects/my-project/locations/global/keyRings/r/cryptoKeys/k',
    'projects/example.com:legacy-proj/locations/us/keyRings/ring_1/cryptoKeys/KEY-2',
    'projects/123456789012/locations/nam-eur-asia1/keyRings/r/cryptoKeys/k',
  ])('accepts %s', (name) => {
    expect(cryptoKeyNameProblem(name)).toBeUndefined();
  });

  it.each([
    [`${KEY}/cryptoKeyVersions/3`, /not a CryptoKeyVersion/],
    [`//cloudkms.googleapis.com/${KEY}`, /remove the "\/\/cloudkms.googleapis.com\/" prefix/],
    [`https://cloudkms.googleapis.com/v1/${KEY}`, /not a URL/],
    ['projects/p/locations/l/keyrings/r/cryptoKeys/k', /segment 5 should be "keyRings"/],
    ['projects/my-project/locations/global/keyRings/r', /segment 7 should be "cryptoKeys"/],
    ['projects/my-project/locations/global/keyRings//cryptoKeys/k', /keyRings id is missing/],
    ['projects/my-project/locations/global/keyRings/r/cryptoKeys/k/', /must not end with "\/"/],
    [
      'projects/my-project/locations/global/keyRings/r/cryptoKeys/bad.name',
      /characters Cloud KMS does not allow/,
    ],
    ['etcd', /segment 1 should be "projects"/],
  ])('explains what is wrong with %s', (name, message) => {
    const r = gcpSchema.safeParse({ keyName: name });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0].message).toMatch(message);
    expect(r.error?.issues[0].message).toMatch(/projects\/PROJECT\/locations\/LOCATION/);
  });

  it('allows insecure only with a loopback endpoint and without caFile', () => {
    expect(gcpSchema.safeParse({ keyName: KEY, insecure: true }).error?.issues[0].message).toMatch(
      /needs gcp.endpoint/,
    );
    expect(
      gcpSchema.safeParse({ keyName: KEY, insecure: true, endpoint: 'cloudkms.googleapis.com:443' }).error
        ?.issues[0].message,
    ).toMatch(/only with a loopback endpoint/);
    expect(gcpSchema.safeParse({ keyName: KEY, insecure: true, endpoint: '127.0.0.1:9000' }).success).toBe(
      true,
    );
    expect(gcpSchema.safeParse({ keyName: KEY, insecure: true, endpoint: '[::1]:9000' }).success).toBe(true);
    expect(
      gcpSchema.safeParse({ keyName: KEY, insecure: true, endpoint: 'localhost:1', caFile: '/ca.pem' })
        .success,
    ).toBe(false);
  });

  it('rejects an endpoint with a scheme, an empty AAD and out-of-range tuning', () => {
    expect(
      gcpSchema.safeParse({ keyName: KEY, endpoint: 'https://cloudkms.googleapis.com' }).error?.issues[0]
        .message,
    ).toMatch(/no scheme/);
    expect(gcpSchema.safeParse({ keyName: KEY, aad: '' }).success).toBe(false);
    expect(gcpSchema.safeParse({ keyName: KEY, aad: 'x'.repeat(65_537) }).success).toBe(false);
    expect(gcpSchema.safeParse({ keyName: KEY, attemptTimeout: '10ms' }).success).toBe(false);
    expect(gcpSchema.safeParse({ keyName: KEY, maxAttempts: 0 }).success).toBe(false);
    expect(gcpSchema.safeParse({ keyName: KEY, extra: 1 }).success).toBe(false);
  });

  it('maps the --gcp-* flags and KMS_PLUGIN_GCP_* env vars onto the section (flags win)', () => {
    const config = loadConfig({
      env: { KMS_PLUGIN_PROVIDER: 'gcp', KMS_PLUGIN_GCP_KEY_NAME: KEY, KMS_PLUGIN_GCP_AAD: 'from-env' },
      flags: {
        'gcp-aad': 'cluster-prod',
        'gcp-endpoint': '127.0.0.1:9443',
        'gcp-insecure': 'true',
        'gcp-call-timeout': '750ms',
        'gcp-max-attempts': '2',
        'gcp-credentials-file': '/var/run/secrets/gcp/sa.json',
      },
    });
    expect(config.provider).toBe('gcp');
    expect(config.gcp).toMatchObject({
      keyName: KEY,
      aad: 'cluster-prod',
      endpoint: '127.0.0.1:9443',
      insecure: true,
      attemptTimeout: 750,
      maxAttempts: 2,
      credentialsFile: '/var/run/secrets/gcp/sa.json',
    });
  });

  it('names the field in the error for a malformed key name from a flag', () => {
    const err = configError(() =>
      loadConfig({ env: {}, flags: { provider: 'gcp', 'gcp-key-name': `${KEY}/cryptoKeyVersions/1` } }),
    );
    expect(err.message).toMatch(/gcp\.keyName: .*not a CryptoKeyVersion/);
  });

  it('requires the section when provider is gcp', () => {
    const err = configError(() => loadConfig({ env: {}, flags: { provider: 'gcp' } }));
    expect(err.message).toMatch(/"gcp:" section is missing/);
  });
});
