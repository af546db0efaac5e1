import { existsSync } from 'node:fs';
import type { LocalConfig } from '../../config/providers/local.js';
import type { KekProvider, ProviderDeps } from '../types.js';
import { generateKeyFile, writeKeyFile, zeroKeyFile } from './keyfile.js';
import { LocalProvider } from './provider.js';

export { LocalProvider } from './provider.js';

export async function createProvider(config: LocalConfig, deps: ProviderDeps): Promise<KekProvider> {
  if (config.createIfMissing && !existsSync(config.keyFile)) {
    const file = generateKeyFile();
    writeKeyFile(config.keyFile, file, { exclusive: true });
    zeroKeyFile(file);
    deps.logger.warn(
      { keyFile: config.keyFile },
      'DEVELOPMENT ONLY: created a new local key file. Anyone who can read it can decrypt every Secret it protects; use a cloud KMS or Vault in production',
    );
  }
  return new LocalProvider(config, deps);
}
