/** GCP provider: SDK client options and endpoints (src/kek/gcp/sdk.ts, lazy.ts). */
import { describe, expect, it } from '@jest/globals';

import { gcpSchema } from '../../../../src/config/providers/gcp.js';
import { ConfigError } from '../../../../src/errors.js';

import { lazySdkApi } from '../../../../src/kek/gcp/lazy.js';
import { clientOptions, splitEndpoint } from '../../../../src/kek/gcp/sdk.js';

import { KEY } from './support.js';

describe('gcp SDK client options', () => {
  it('splits endpoints', () => {
    expect(splitEndpoint('cloudkms.googleapis.com')).toEqual({ host: 'cloudkms.googleapis.com', port: 443 });
    expect(splitEndpoint('127.0.0.1:9000')).toEqual({ host: '127.0.0.1', port: 9000 });
    expect(splitEndpoint('[::1]:9000')).toEqual({ host: '::1', port: 9000 });
  });

  it('uses ADC by default, the credentials file when set, and a static auth client in insecure mode', () => {
    expect(clientOptions(gcpSchema.parse({ keyName: KEY }))).toEqual({});
    const insecure = clientOptions(
      gcpSchema.parse({ keyName: KEY, endpoint: '127.0.0.1:1234', insecure: true }),
    );
    expect(insecure.apiEndpoint).toBe('127.0.0.1');
    expect(insecure.port).toBe(1234);
    expect(insecure.sslCreds).toBeDefined();
    expect(insecure.authClient).toBeDefined();
    expect(insecure.keyFilename).toBeUndefined();
    // A file named in config that cannot be read is a ConfigError (exit 2) under every provider
    // (was invalid_input, exit 1, issue 14).
    let missing: unknown;
    try {
      clientOptions(gcpSchema.parse({ keyName: KEY, credentialsFile: '/nonexistent/sa.json' }));
    } catch (err) {
      missing = err;
    }
    expect(missing).toBeInstanceOf(ConfigError);
    expect((missing as ConfigError).field).toBe('gcp.credentialsFile');
    expect((missing as ConfigError).message).toMatch(
      /gcp.credentialsFile: cannot read \/nonexistent\/sa.json \(ENOENT\)/,
    );
  });

  it('checks configured files at provider creation even though the SDK loads on first use', () => {
    expect(() =>
      lazySdkApi(gcpSchema.parse({ keyName: KEY, credentialsFile: '/nonexistent/wif.json' })),
    ).toThrow(/gcp.credentialsFile: cannot read \/nonexistent\/wif.json \(ENOENT\)/);
    expect(() => lazySdkApi(gcpSchema.parse({ keyName: KEY, caFile: '/nonexistent/ca.pem' }))).toThrow(
      /gcp.caFile: cannot read/,
    );
    expect(typeof lazySdkApi(gcpSchema.parse({ keyName: KEY })).encrypt).toBe('function');
  });
});
