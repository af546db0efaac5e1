import type { VaultConfig } from '../../config/providers/vault.js';
import { InvalidInputError } from '../errors.js';
import type { KekProvider, ProviderDeps } from '../types.js';

// Placeholder until the vault provider lands (its own issue).
export async function createProvider(_config: VaultConfig, _deps: ProviderDeps): Promise<KekProvider> {
  throw new InvalidInputError('the vault provider is not available in this build');
}
