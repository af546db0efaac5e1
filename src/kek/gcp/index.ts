/**
 * Google Cloud KMS KEK provider (see ./provider.ts and docs/providers/gcp.md).
 * Loaded lazily by the registry, and the Google SDK itself only on the first remote call
 * (./lazy.ts), so `provider: gcp` does not delay binding the socket.
 */
import type { GcpConfig } from '../../config/providers/gcp.js';
import type { KekProvider, ProviderDeps } from '../types.js';
import type { KmsApi } from './api.js';
import { GcpKekProvider, type GcpProviderOptions } from './provider.js';
import { lazySdkApi } from './lazy.js';

export { GcpKekProvider } from './provider.js';
export type { GcpProviderOptions } from './provider.js';
export type { KmsApi } from './api.js';

export async function createProvider(
  config: GcpConfig,
  deps: ProviderDeps,
  options: GcpProviderOptions & { api?: KmsApi } = {},
): Promise<KekProvider> {
  const api = options.api ?? lazySdkApi(config, { logger: deps.logger, metrics: deps.metrics });
  const mode = config.insecure
    ? 'insecure (plaintext, no credentials: tests only)'
    : config.caFile
      ? 'tls (custom CA)'
      : 'tls';
  const credentialSource = config.insecure
    ? 'none'
    : config.credentialsFile
      ? 'credentialsFile'
      : 'application default credentials';
  deps.logger.info(
    {
      provider: 'gcp',
      role: deps.role,
      cryptoKey: config.keyName,
      endpoint: config.endpoint ?? 'cloudkms.googleapis.com:443',
      mode,
      credentialSource,
    },
    'gcp KEK provider configured',
  );
  if (config.insecure) {
    deps.logger.warn(
      { provider: 'gcp', endpoint: config.endpoint },
      'gcp.insecure is set: plaintext gRPC to a test endpoint',
    );
  }
  return new GcpKekProvider(config, api, deps, options);
}
