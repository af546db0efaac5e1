import type { AwsConfig } from '../../config/providers/aws.js';
import { InvalidInputError } from '../errors.js';
import type { KekProvider, ProviderDeps } from '../types.js';

// Placeholder until the aws provider lands (its own issue).
export async function createProvider(_config: AwsConfig, _deps: ProviderDeps): Promise<KekProvider> {
  throw new InvalidInputError('the aws provider is not available in this build');
}
