/**
 * `rotate --provider pkcs11`: generates the next KEK version (a new non-extractable key object with
 * the same CKA_LABEL and the next CKA_ID) inside the token. Settings come from the same flags, env
 * vars and config file as `serve` (--pkcs11-module, --pkcs11-token-label | --pkcs11-slot,
 * --pkcs11-pin-file, --pkcs11-key-label). Running plugins adopt the new version through their
 * rotation watcher, as with a cloud KMS (docs/providers/pkcs11.md).
 */
import { flagValues } from './flags.js';
import { loadConfig } from '../config/load.js';
import { providerFlags } from '../config/schema.js';
import { ConfigError } from '../errors.js';
import type { GeneratedVersion } from '../kek/pkcs11/index.js';
import { silentLogger } from '../observability/logger.js';

export async function rotatePkcs11(opts: Record<string, unknown>): Promise<GeneratedVersion> {
  const config = loadConfig({
    file: typeof opts.config === 'string' ? opts.config : undefined,
    flags: { ...flagValues(opts, providerFlags('pkcs11')), provider: 'pkcs11' },
  });
  if (!config.pkcs11) throw new ConfigError('pkcs11', 'the pkcs11 settings are missing (--pkcs11-* flags)');
  const { generateNextVersion } = await import('../kek/pkcs11/index.js');
  return generateNextVersion(config.pkcs11, silentLogger());
}

export function printPkcs11Rotation(r: GeneratedVersion, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return;
  }
  process.stdout.write(
    `generated version ${r.version} of "${r.keyLabel}" on ${r.token} (${r.family.toUpperCase()}, CKA_ID ${r.id}, non-extractable; versions ${r.versions.join(', ')}). ` +
      'Running plugins switch key_id after two probes; older versions keep decrypting (docs/providers/pkcs11.md)\n',
  );
}
