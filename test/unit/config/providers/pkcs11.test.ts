/** The `pkcs11:` config section: flags, env vars, and errors that name the field and the fix. */
import { describe, expect, it } from '@jest/globals';
import { loadConfig } from '../../../../src/config/load.js';
import { configError } from '../../../support/config-error.js';

const base = {
  'pkcs11-module': '/usr/lib/softhsm/libsofthsm2.so',
  'pkcs11-pin-file': '/etc/kms/pin',
  'pkcs11-key-label': 'kek',
};

function error(fn: () => unknown): string {
  return configError(fn).message;
}

describe('pkcs11 config', () => {
  it('flags fill the section, with defaults for mechanism and sessions', () => {
    const c = loadConfig({
      env: {},
      flags: { provider: 'pkcs11', ...base, 'pkcs11-token-label': 'k8s-kms' },
    });
    expect(c.pkcs11).toEqual({
      modulePath: '/usr/lib/softhsm/libsofthsm2.so',
      tokenLabel: 'k8s-kms',
      pinFile: '/etc/kms/pin',
      keyLabel: 'kek',
      mechanism: 'auto',
      concurrency: 4,
      maxAttempts: 4,
      timeout: 10_000,
    });
  });

  it('env vars work like every other provider (KMS_PLUGIN_PKCS11_*), slot instead of the label', () => {
    const c = loadConfig({
      flags: {},
      env: {
        KMS_PLUGIN_PROVIDER: 'pkcs11',
        KMS_PLUGIN_PKCS11_MODULE: '/opt/hsm/lib/libCryptoki2.so',
        KMS_PLUGIN_PKCS11_SLOT: '3',
        KMS_PLUGIN_PKCS11_PIN_FILE: '/etc/kms/pin',
        KMS_PLUGIN_PKCS11_KEY_LABEL: 'kek',
        KMS_PLUGIN_PKCS11_MECHANISM: 'rsa-oaep',
      },
    });
    expect(c.pkcs11).toMatchObject({
      slot: 3,
      mechanism: 'rsa-oaep',
      modulePath: '/opt/hsm/lib/libCryptoki2.so',
    });
  });

  it('token label or slot: exactly one', () => {
    expect(error(() => loadConfig({ env: {}, flags: { provider: 'pkcs11', ...base } }))).toMatch(
      /pkcs11\.tokenLabel.*--pkcs11-token-label.*--pkcs11-slot/,
    );
    expect(
      error(() =>
        loadConfig({
          env: {},
          flags: { provider: 'pkcs11', ...base, 'pkcs11-token-label': 'a', 'pkcs11-slot': '1' },
        }),
      ),
    ).toMatch(/exclusive/);
  });

  it('relative module or PIN file paths and unknown mechanisms are refused, naming the field', () => {
    const flags = { provider: 'pkcs11', ...base, 'pkcs11-token-label': 'a' };
    expect(
      error(() => loadConfig({ env: {}, flags: { ...flags, 'pkcs11-module': 'libsofthsm2.so' } })),
    ).toMatch(/pkcs11\.modulePath.*absolute path/);
    expect(error(() => loadConfig({ env: {}, flags: { ...flags, 'pkcs11-pin-file': 'pin' } }))).toMatch(
      /pkcs11\.pinFile/,
    );
    expect(error(() => loadConfig({ env: {}, flags: { ...flags, 'pkcs11-mechanism': 'des' } }))).toMatch(
      /auto, aes-gcm, aes-kwp, rsa-oaep/,
    );
  });
});
