/**
 * Opt-in test against a real Azure Key Vault or Managed HSM. Skipped unless these are set:
 *
 *   AZURE_KMS_LIVE_VAULT_URL=https://myvault.vault.azure.net
 *   AZURE_KMS_LIVE_KEY_NAME=kube-kek            # an RSA (or oct-HSM on Managed HSM) key with wrapKey/unwrapKey
 *   # credentials as DefaultAzureCredential finds them (az login is not used: set AZURE_CLIENT_ID /
 *   # AZURE_TENANT_ID / AZURE_CLIENT_SECRET, workload identity, or managed identity), or
 *   AZURE_KMS_LIVE_CLOUD_CONFIG=/etc/kubernetes/azure.json
 *
 * It only reads the key and wraps/unwraps random bytes: nothing in the vault changes.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { azureSchema } from '../../src/config/providers/azure.js';
import { timeoutSignal } from '../../src/deadline.js';
import { AzureKekProvider } from '../../src/kek/azure/index.js';
import { captureDeps } from '../fakes/azure-keyvault/harness.js';

const url = process.env.AZURE_KMS_LIVE_VAULT_URL;
const name = process.env.AZURE_KMS_LIVE_KEY_NAME;
const maybe = url && name ? describe : describe.skip;

maybe('live Azure Key Vault', () => {
  const providers: AzureKekProvider[] = [];
  const cap = captureDeps();
  const make = (): AzureKekProvider => {
    const cfg = azureSchema.parse({
      vaultUrl: url,
      keyName: name,
      ...(process.env.AZURE_KMS_LIVE_CLOUD_CONFIG
        ? { cloudConfigFile: process.env.AZURE_KMS_LIVE_CLOUD_CONFIG }
        : {}),
      attemptTimeout: '5s',
    });
    const p = new AzureKekProvider(cfg, cap.deps);
    providers.push(p);
    return p;
  };
  afterAll(async () => {
    for (const p of providers) await p.close();
  });

  it('resolves the current version, wraps and unwraps with that exact version', async () => {
    const a = make();
    const info = await a.currentVersion(timeoutSignal(20_000));
    expect(info.state).toBe('enabled');
    expect(info.ref.version).toMatch(/^[0-9a-zA-Z]{1,64}$/);
    expect(info.ordinal).toBeGreaterThan(0);
    const dek = randomBytes(32);
    const w = await a.wrap(dek, info, timeoutSignal(20_000));
    expect(w.ref).toEqual(info.ref);
    const b = make();
    expect((await b.currentVersion(timeoutSignal(20_000))).ref).toEqual(info.ref);
    expect((await b.unwrap(w.wrapped, w.ref, timeoutSignal(20_000))).equals(dek)).toBe(true);
    const text = cap.lines.join('\n');
    expect(text).not.toContain(dek.toString('base64'));
    expect(text).not.toContain(w.wrapped.toString('base64'));
  }, 60_000);
});
