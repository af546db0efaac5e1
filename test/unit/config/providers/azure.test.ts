/** The `azure:` config section: validation, normalisation, errors that say what to fix, flags. */
import { describe, expect, it } from '@jest/globals';
import { azureSchema, normaliseVaultUrl } from '../../../../src/config/providers/azure.js';
import { providerFlags } from '../../../../src/config/schema.js';
import { loadConfig, validateConfig } from '../../../../src/config/load.js';

const ok = (over: Record<string, unknown> = {}) =>
  azureSchema.safeParse({ vaultUrl: 'https://myvault.vault.azure.net', keyName: 'kek', ...over });
const messages = (r: ReturnType<typeof ok>): string =>
  r.success ? '' : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n');

describe('azure config', () => {
  it('accepts a minimal section with safe defaults', () => {
    const r = ok();
    expect(r.success).toBe(true);
    if (!r.success) return;
    expect(r.data).toMatchObject({
      vaultUrl: 'https://myvault.vault.azure.net',
      keyName: 'kek',
      algorithm: 'auto',
      credential: 'auto',
      disableChallengeResourceVerification: false,
    });
    expect(r.data.keyVersion).toBeUndefined();
  });

  it.each([
    ['https://MyVault.Vault.Azure.NET/', 'https://myvault.vault.azure.net'],
    ['https://kv-prod-01.vault.usgovcloudapi.net', 'https://kv-prod-01.vault.usgovcloudapi.net'],
    ['https://kv1.vault.azure.cn', 'https://kv1.vault.azure.cn'],
    ['https://myhsm.managedhsm.azure.net', 'https://myhsm.managedhsm.azure.net'],
    ['https://vault.private.contoso.example', 'https://vault.private.contoso.example'],
    ['https://localhost:8443', 'https://localhost:8443'],
  ])('normalises %s', (input, expected) => {
    const r = normaliseVaultUrl(input);
    expect(r).toEqual({ url: expected, managedHsm: expected.includes('managedhsm') });
  });

  it.each([
    ['http://myvault.vault.azure.net', /must use https/],
    ['myvault.vault.azure.net', /expected the vault URL/],
    ['https://myvault.vault.azure.net/keys/kek/abc', /is a key URL.*azure.keyName/],
    ['https://myvault.vault.azure.net/foo', /without a path/],
    ['https://myvault.vault.azure.net?x=1', /query/],
    ['https://my_vault.vault.azure.net', /expected https:\/\/<vault-name>/],
    ['https://ab.vault.azure.net', /vault name "ab" is not valid/],
    ['https://a.b.vault.azure.net', /is not valid/],
    ['https://vault', /expected https:\/\/<vault-name>/],
    ['https://user:pw@myvault.vault.azure.net', /user info/],
  ])('rejects vault URL %s with a clear message', (url, re) => {
    const r = ok({ vaultUrl: url });
    expect(r.success).toBe(false);
    expect(messages(r)).toMatch(/^vaultUrl: /);
    expect(messages(r)).toMatch(re);
  });

  it.each(['my key', 'kek/1', 'https://v.vault.azure.net/keys/kek', '', 'k'.repeat(128)])(
    'rejects key name %j',
    (name) => {
      const r = ok({ keyName: name });
      expect(r.success).toBe(false);
      expect(messages(r)).toMatch(/^keyName: expected a key name of 1-127/);
    },
  );

  it('validates a pinned version', () => {
    expect(ok({ keyVersion: '0123456789abcdef0123456789abcdef' }).success).toBe(true);
    expect(messages(ok({ keyVersion: 'abc/def' }))).toMatch(/^keyVersion: expected a key version id/);
  });

  it('requires what an explicit credential needs', () => {
    expect(messages(ok({ credential: 'client-secret' }))).toMatch(
      /tenantId: is required for credential "client-secret"/,
    );
    expect(messages(ok({ credential: 'client-secret' }))).toMatch(/clientSecretFile: is required/);
    expect(messages(ok({ credential: 'azure-json' }))).toMatch(
      /cloudConfigFile: is required for credential "azure-json"/,
    );
    expect(messages(ok({ credential: 'bogus' }))).toMatch(/credential: expected one of: auto, default/);
    expect(
      ok({ credential: 'client-secret', tenantId: 't', clientId: 'c', clientSecretFile: '/s' }).success,
    ).toBe(true);
  });

  it('refuses A256KW for a Key Vault (non-HSM) URL', () => {
    expect(messages(ok({ algorithm: 'A256KW' }))).toMatch(/A256KW needs a Managed HSM/);
    expect(ok({ algorithm: 'A256KW', vaultUrl: 'https://hsm1.managedhsm.azure.net' }).success).toBe(true);
  });

  it('rejects unknown fields and bad durations', () => {
    expect(ok({ vault: 'x' }).success).toBe(false);
    expect(messages(ok({ attemptTimeout: 'soon' }))).toMatch(/^attemptTimeout: expected a duration/);
  });

  it('plugs into the whole config: provider azure needs the section, errors name the field', () => {
    expect(() => validateConfig({ provider: 'azure' })).toThrow(
      /azure: provider is "azure" but the "azure:" section is missing/,
    );
    expect(() =>
      validateConfig({ provider: 'azure', azure: { vaultUrl: 'http://x.vault.azure.net', keyName: 'k' } }),
    ).toThrow(/azure\.vaultUrl: must use https/);
    const cfg = validateConfig({
      provider: 'azure',
      azure: { vaultUrl: 'https://kv1.vault.azure.net/', keyName: 'k' },
    });
    expect(cfg.azure?.vaultUrl).toBe('https://kv1.vault.azure.net');
  });

  it('every flag maps to a field and becomes a KMS_PLUGIN_AZURE_* env var', () => {
    const cfg = loadConfig({
      env: {
        KMS_PLUGIN_PROVIDER: 'azure',
        KMS_PLUGIN_AZURE_VAULT_URL: 'https://kv1.vault.azure.net',
        KMS_PLUGIN_AZURE_KEY_NAME: 'kek',
        KMS_PLUGIN_AZURE_REQUEST_TIMEOUT: '750ms',
      },
      flags: { 'azure-key-version': 'abc123', 'azure-disable-challenge-resource-verification': true },
    });
    expect(cfg.azure).toMatchObject({
      keyName: 'kek',
      keyVersion: 'abc123',
      attemptTimeout: 750,
      disableChallengeResourceVerification: true,
    });
    const shape = Object.keys(azureSchema.shape);
    expect(shape.length).toBeGreaterThan(10);
    for (const f of providerFlags('azure')) {
      expect(f.name.startsWith('azure-')).toBe(true);
      expect(f.path[0]).toBe('azure');
      expect(shape).toContain(f.path[1]);
    }
  });
});
