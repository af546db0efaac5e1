/**
 * Entry point the registry imports: loads the PKCS#11 module (shared per path in the process) and
 * builds the provider. Nothing here touches the token yet; the first probe opens and logs in.
 */
import type { Pkcs11Config } from '../../config/providers/pkcs11.js';
import type { KekProvider, ProviderDeps } from '../types.js';
import { Pkcs11Module } from './module.js';
import { readPinFile } from './pin.js';
import { Pkcs11Provider, type Pkcs11ProviderOptions } from './provider.js';

export { Pkcs11Provider, canonicalKey, type Pkcs11ProviderOptions } from './provider.js';
export { generateNextVersion, type GeneratedVersion } from './rotate.js';

export async function createProvider(
  config: Pkcs11Config,
  deps: ProviderDeps,
  options: Pkcs11ProviderOptions = {},
): Promise<KekProvider> {
  readPinFile(config.pinFile, true); // fail at start-up (ConfigError, exit 2) if the PIN file is unreadable
  const module = await Pkcs11Module.open(config.modulePath);
  const provider = new Pkcs11Provider(config, module, deps, options);
  deps.logger.info(
    {
      provider: 'pkcs11',
      role: deps.role,
      kekName: provider.key,
      module: config.modulePath,
      pinFile: config.pinFile,
      sessions: config.concurrency,
    },
    'pkcs11 provider configured',
  );
  return provider;
}
