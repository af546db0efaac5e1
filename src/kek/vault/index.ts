/**
 * Entry point the registry imports: builds the Vault HTTP client (with the configured TLS
 * material) and the Transit provider.
 */
import type { VaultConfig } from '../../config/providers/vault.js';
import { CredentialFile, parsePem, parsePrivateKey } from '../credential-file.js';
import { readConfigFile } from '../errors.js';
import type { KekProvider, ProviderDeps } from '../types.js';
import { VaultHttp, type VaultTlsMaterial } from './http.js';
import { VaultProvider, type VaultProviderOptions } from './provider.js';

export { VaultProvider, type VaultProviderOptions } from './provider.js';
export { canonicalKey } from './keys.js';

export async function createProvider(
  config: VaultConfig,
  deps: ProviderDeps,
  options: VaultProviderOptions = {},
): Promise<KekProvider> {
  const tls: VaultTlsMaterial = {
    ca: readPem(config.caFile, 'vault.caFile'),
    cert: readPem(config.tls.certFile, 'vault.tls.certFile'),
    key: readPem(config.tls.keyFile, 'vault.tls.keyFile'),
    servername: config.tls.serverName,
  };
  const watch = (path: string, field: string): CredentialFile<string> =>
    new CredentialFile({
      path,
      field,
      provider: 'vault',
      parse: field.endsWith('keyFile') ? parsePrivateKey : parsePem(false),
      logger: deps.logger,
      metrics: deps.metrics,
    });
  const clientCertificate =
    config.tls.certFile && config.tls.keyFile
      ? {
          cert: watch(config.tls.certFile, 'vault.tls.certFile'),
          key: watch(config.tls.keyFile, 'vault.tls.keyFile'),
        }
      : undefined;
  const http = new VaultHttp({
    address: config.address,
    namespace: config.namespace,
    tls,
    clientCertificate,
  });
  const provider = new VaultProvider(config, http, deps, options);
  deps.logger.info(
    {
      provider: 'vault',
      role: deps.role,
      transitKey: provider.key,
      authMethod: config.auth.method,
      customCa: tls.ca !== undefined,
      mtls: tls.cert !== undefined,
    },
    'vault provider configured',
  );
  return provider;
}

function readPem(file: string | undefined, field: string): Buffer | undefined {
  return file === undefined ? undefined : readConfigFile(file, field);
}
