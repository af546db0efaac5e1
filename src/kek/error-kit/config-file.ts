/**
 * The one reader for files named in config (CA bundles, client certificates and keys, credentials
 * JSON, azure.json, client secret files, the PKCS#11 PIN file) at start-up. A file that cannot be
 * read is a configuration error under every provider: ConfigError naming the field, the path, the
 * errno and the fix, so `serve` exits 2 (never 1) and never prints the contents.
 *
 * Files re-read while serving (a rotated token, certificate or PIN) go through CredentialFile or
 * the PKCS#11 session instead: there a bad new version is not a configuration error (the plugin
 * keeps the last good credential and logs), and the first read of a credential an agent may still
 * be writing (Vault token/JWT/AppRole files) fails the call, not the process. Both word their
 * error with `unreadableFile` below, so every message about an unreadable file reads the same.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../../errors.js';

/** `cannot read <what> <path> (<errno>); check the path and that the plugin's user can read it`. */
export function unreadableFile(path: string, err: unknown, what?: string): string {
  const code = (err as NodeJS.ErrnoException | null)?.code ?? 'error';
  return `cannot read ${what ? `${what} ` : ''}${path} (${code}); check the path and that the plugin's user can read it`;
}

/** Reads a file named by config field `field` (e.g. `vault.tls.caFile`), or throws ConfigError. */
export function readConfigFile(path: string, field: string, what?: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(field, unreadableFile(path, err, what));
  }
}

/** readConfigFile as UTF-8 text. */
export function readConfigText(path: string, field: string, what?: string): string {
  return readConfigFile(path, field, what).toString('utf8');
}
