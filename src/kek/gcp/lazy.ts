/**
 * A KmsApi that loads @google-cloud/kms (and google-gax, grpc, auth: about half a second of
 * module loading) on the first call instead of at provider creation, so the plugin binds its socket
 * first (a missing socket costs the apiserver its whole timeout). File settings are still checked
 * up front, so a wrong path fails at start-up (ConfigError: exit 2).
 */
import type { GcpConfig } from '../../config/providers/gcp.js';
import type { Logger } from '../../observability/logger.js';
import type { ProviderMetrics } from '../../observability/metrics.js';
import type { KmsApi } from './api.js';
import { ConfigError } from '../../errors.js';
import { InvalidInputError, readConfigFile } from '../errors.js';

export function lazySdkApi(config: GcpConfig, reload?: { logger: Logger; metrics: ProviderMetrics }): KmsApi {
  if (!config.insecure && config.credentialsFile)
    readConfigFile(config.credentialsFile, 'gcp.credentialsFile');
  if (!config.insecure && config.caFile) readConfigFile(config.caFile, 'gcp.caFile');
  let loading: Promise<KmsApi> | undefined;
  const api = (): Promise<KmsApi> =>
    (loading ??= import('./sdk.js').then((m) => {
      try {
        return new m.SdkKmsApi(config, reload);
      } catch (err) {
        // Past start-up a file that vanished fails the call (invalid_input, as before), not the process.
        throw err instanceof ConfigError ? new InvalidInputError(err.message) : err;
      }
    }));
  return {
    ready: async () => {
      await api();
    },
    getCryptoKey: async (name, options) => (await api()).getCryptoKey(name, options),
    listCryptoKeyVersions: async (request, options) => (await api()).listCryptoKeyVersions(request, options),
    encrypt: async (request, options) => (await api()).encrypt(request, options),
    decrypt: async (request, options) => (await api()).decrypt(request, options),
    close: async () => {
      const loaded = await loading?.catch(() => undefined);
      await loaded?.close();
    },
  };
}
