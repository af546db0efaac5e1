import type { GcpConfig } from '../../config/providers/gcp.js';
import { InvalidInputError } from '../errors.js';
import type { KekProvider, ProviderDeps } from '../types.js';

// Placeholder until the gcp provider lands (its own issue).
export async function createProvider(_config: GcpConfig, _deps: ProviderDeps): Promise<KekProvider> {
  throw new InvalidInputError('the gcp provider is not available in this build');
}
