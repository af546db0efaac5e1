/**
 * The provider catalog: one line per KEK backend, `name: its config section` (schema, old field
 * names). The provider enum, the config schema's sections, the `--<provider>-*` flags and env
 * vars, the deprecated aliases and docs/configuration.md all come from here, and the KEK registry
 * (src/kek/registry.ts) must name a factory for every entry or the build fails.
 *
 * A new backend: src/kek/<name>/ (its provider and `createProvider`), src/config/providers/<name>.ts
 * (its section), one line here, one line in src/kek/registry.ts, and docs/providers/<name>.md.
 */
import type { ProviderSection } from '../fields.js';
import { awsSection } from './aws.js';
import { azureSection } from './azure.js';
import { gcpSection } from './gcp.js';
import { localSection } from './local.js';
import { pkcs11Section } from './pkcs11.js';
import { vaultSection } from './vault.js';

export const PROVIDER_CATALOG = {
  local: localSection,
  aws: awsSection,
  gcp: gcpSection,
  azure: azureSection,
  vault: vaultSection,
  pkcs11: pkcs11Section,
} as const satisfies Record<string, ProviderSection>;

export type ProviderName = keyof typeof PROVIDER_CATALOG;

/** Provider names in catalog order. */
export const PROVIDERS = Object.keys(PROVIDER_CATALOG) as [ProviderName, ...ProviderName[]];
