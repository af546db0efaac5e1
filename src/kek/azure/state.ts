/**
 * Key Vault key attributes → the plugin's KeyState, plus the facts about one key version that the
 * provider remembers (so wrap() can re-check expiry at the moment it is called).
 */
import type { KeyState } from '../types.js';

export interface VersionFacts {
  /** Version id (the last segment of the kid). */
  version: string;
  /** Versioned kid as the service reports it, e.g. https://v.vault.azure.net/keys/kek/0123…. */
  kid: string;
  /** RSA, RSA-HSM, oct-HSM, EC, …. */
  keyType: string;
  keyOps?: readonly string[];
  enabled: boolean;
  notBefore?: Date;
  expiresOn?: Date;
  createdOn: Date;
  recoveryLevel?: string;
  /** Set when the key is soft-deleted (recoverable until the purge date). */
  deletedOn?: Date;
  scheduledPurgeDate?: Date;
}

export interface StateVerdict {
  state: KeyState;
  detail?: string;
}

/** The state of a version at `now`; the first reason that stops new wraps wins. */
export function stateOf(f: VersionFacts, now: Date = new Date()): StateVerdict {
  if (f.deletedOn !== undefined) {
    const purge = f.scheduledPurgeDate ? `; purge scheduled for ${f.scheduledPurgeDate.toISOString()}` : '';
    return {
      state: 'pending_deletion',
      detail: `key version ${f.version} was deleted on ${f.deletedOn.toISOString()}${purge}; recover it (az keyvault key recover) before the purge date or data wrapped with it is lost`,
    };
  }
  if (!f.enabled) {
    return {
      state: 'disabled',
      detail: `key version ${f.version} is disabled in Key Vault; re-enable it or rotate to an enabled version`,
    };
  }
  if (f.expiresOn !== undefined && now.getTime() >= f.expiresOn.getTime()) {
    return {
      state: 'expired',
      detail: `key version ${f.version} expired on ${f.expiresOn.toISOString()}; rotate the key (new version) or extend its expiry`,
    };
  }
  if (f.notBefore !== undefined && now.getTime() < f.notBefore.getTime()) {
    return {
      state: 'not_yet_valid',
      detail: `key version ${f.version} is not valid before ${f.notBefore.toISOString()}`,
    };
  }
  return { state: 'enabled' };
}

/** True when the recovery level means a delete is immediate and permanent (no soft delete). */
export function isPurgeable(recoveryLevel: string | undefined): boolean {
  return recoveryLevel !== undefined && !/recoverable/i.test(recoveryLevel);
}

/** True when soft delete is on but purge protection is off (someone can still purge early). */
export function lacksPurgeProtection(recoveryLevel: string | undefined): boolean {
  return recoveryLevel !== undefined && /purgeable/i.test(recoveryLevel);
}
