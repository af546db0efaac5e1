/**
 * "The key is unusable", whether the KMS says it as a state field or as an error, in one place.
 *
 * Providers map a state field (AWS KeyState, GCP CryptoKeyVersionState, Azure attributes, Vault
 * key metadata) to a KeyState in their own state modules. When the KMS says it with an error
 * instead (AWS DisabledException / KMSInvalidStateException / NotFoundException, GCP NOT_FOUND /
 * FAILED_PRECONDITION or a key without a primary, Azure 403 KeyDisabled / 404, Vault 404 / a
 * deleted key), the provider's classifier marks the error with the same KeyState through
 * `withKeyState`. The rotation watcher reads it with `keyStateOf` and treats it exactly like the
 * state field: Status fails within one probe, and recovers within one probe. docs/key-states.md
 * lists every signal of every provider.
 */
import type { PluginError } from '../errors.js';
import { KEY_STATES, type KeyState } from './types.js';

const marks = new WeakMap<object, KeyState>();

/** Marks `err` as meaning "the configured key is in `state`" (returns `err`). */
export function withKeyState<E extends PluginError>(err: E, state: KeyState): E {
  marks.set(err, state);
  return err;
}

/** The key state an error stands for, if a provider marked it. */
export function keyStateOf(err: unknown): KeyState | undefined {
  return typeof err === 'object' && err !== null ? marks.get(err) : undefined;
}

/** Key states in which writing new data would be wrong: Status fails and Encrypt is refused. */
export const STOP_WRITES: ReadonlySet<KeyState> = new Set<KeyState>(
  // Every state but `enabled` and `unavailable` (transient: writes wait, they do not stop).
  KEY_STATES.filter((s) => s !== 'enabled' && s !== 'unavailable'),
);

/** Reads a state out of a KMS message that names one (e.g. AWS KMSInvalidStateException's text). */
export function stateFromText(text: string, fallback: KeyState): KeyState {
  if (/pending ?deletion|scheduled for (deletion|destruction)|DESTROY_SCHEDULED/i.test(text))
    return 'pending_deletion';
  if (/\bdestroyed\b/i.test(text)) return 'destroyed';
  if (/pending ?import/i.test(text)) return 'pending_import';
  if (/\bdisabled\b/i.test(text)) return 'disabled';
  return fallback;
}
