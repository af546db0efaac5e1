/**
 * Creates KEK providers from config. Only the configured provider's module (and so its SDK) is
 * imported: a plugin using `local` never loads the AWS, GCP or Azure SDKs.
 *
 * FACTORIES has one entry per provider of the catalog (src/config/providers/index.ts); the
 * compiler rejects a missing or extra one, and checks each factory takes its own section's config.
 */
import type { Config, KekSelection, ProviderName } from '../config/schema.js';
import { InvalidInputError } from './errors.js';
import type { KekProvider, ProviderDeps } from './types.js';

type SectionOf<P extends ProviderName> = NonNullable<Config[P]>;
type Factory<P extends ProviderName> = (config: SectionOf<P>, deps: ProviderDeps) => Promise<KekProvider>;

const FACTORIES: { readonly [P in ProviderName]: () => Promise<Factory<P>> } = {
  local: async () => (await import('./local/index.js')).createProvider,
  aws: async () => (await import('./aws/index.js')).createProvider,
  gcp: async () => (await import('./gcp/index.js')).createProvider,
  azure: async () => (await import('./azure/index.js')).createProvider,
  vault: async () => (await import('./vault/index.js')).createProvider,
  pkcs11: async () => (await import('./pkcs11/index.js')).createProvider,
};

export async function createKekProvider(selection: KekSelection, deps: ProviderDeps): Promise<KekProvider> {
  return create(selection.provider, selection, deps);
}

async function create<P extends ProviderName>(
  provider: P,
  selection: Partial<Record<ProviderName, unknown>>,
  deps: ProviderDeps,
): Promise<KekProvider> {
  const section = selection[provider] as SectionOf<P> | undefined;
  if (section === undefined) {
    throw new InvalidInputError(`provider "${provider}" has no "${provider}:" configuration section`);
  }
  return (await FACTORIES[provider]())(section, deps);
}
