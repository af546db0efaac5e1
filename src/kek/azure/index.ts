/**
 * Azure Key Vault / Managed HSM KEK provider: `provider: azure` with the `azure:` section
 * (src/config/providers/azure.ts). See docs/providers/azure.md.
 */
import type { AzureConfig } from '../../config/providers/azure.js';
import type { KekProvider, ProviderDeps } from '../types.js';
import { AzureKekProvider, type AzureProviderOptions } from './provider.js';

export { AzureKekProvider, type AzureProviderOptions };

export async function createProvider(
  config: AzureConfig,
  deps: ProviderDeps,
  options?: AzureProviderOptions,
): Promise<KekProvider> {
  return new AzureKekProvider(config, deps, options);
}
