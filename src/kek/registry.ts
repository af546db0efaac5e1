/**
 * Creates KEK providers from config. Only the configured provider's module (and so its SDK) is
 * imported: a plugin using `local` never loads the AWS, GCP or Azure SDKs.
 */
import type { KekSelection } from '../config/schema.js';
import { InvalidInputError } from './errors.js';
import type { KekProvider, ProviderDeps } from './types.js';

export async function createKekProvider(selection: KekSelection, deps: ProviderDeps): Promise<KekProvider> {
  const missing = (): never => {
    throw new InvalidInputError(
      `provider "${selection.provider}" has no "${selection.provider}:" configuration section`,
    );
  };
  switch (selection.provider) {
    case 'local':
      return (await import('./local/index.js')).createProvider(selection.local ?? missing(), deps);
    case 'aws':
      return (await import('./aws/index.js')).createProvider(selection.aws ?? missing(), deps);
    case 'gcp':
      return (await import('./gcp/index.js')).createProvider(selection.gcp ?? missing(), deps);
    case 'azure':
      return (await import('./azure/index.js')).createProvider(selection.azure ?? missing(), deps);
    case 'vault':
      return (await import('./vault/index.js')).createProvider(selection.vault ?? missing(), deps);
    case 'pkcs11':
      return (await import('./pkcs11/index.js')).createProvider(selection.pkcs11 ?? missing(), deps);
  }
}
