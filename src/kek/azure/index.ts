import type { AzureConfig } from '../../config/providers/azure.js';
import { InvalidInputError } from '../errors.js';
import type { KekProvider, ProviderDeps } from '../types.js';

// Placeholder until the azure provider lands (its own issue).
export async function createProvider(_config: AzureConfig, _deps: ProviderDeps): Promise<KekProvider> {
  throw new InvalidInputError('the azure provider is not available in this build');
}
