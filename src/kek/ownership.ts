/**
 * The foreign-reference check, decided once for all providers: what wrap() and unwrap() answer when
 * handed a KekRef of another provider or another key (or the same key under another binding: AWS
 * EncryptionContext, GCP AAD, a malformed version) — i.e. one their own canUnwrap() refuses.
 *
 * - unwrap(): ForeignUnwrapRefError, an UnknownKeyError (gRPC NOT_FOUND). The ref comes from stored
 *   data (the EncryptedObject's annotations), and the envelope answers the same situation one layer
 *   up the same way: when no configured provider's canUnwrap() accepts a ref, Decrypt fails with
 *   UnknownKeyError "no configured KEK can unwrap this DEK … add that key … under decryptOnly"
 *   (src/envelope/envelope.ts unwrapShared). A provider asked directly (the CLI, a test) must not
 *   say something else than the envelope would.
 * - wrap(): ForeignWrapRefError, an InvalidInputError (gRPC INVALID_ARGUMENT, not retried). The
 *   version to wrap with never comes from a request: the envelope and `doctor` wrap only with a
 *   version this same provider returned from currentVersion()/newestVersion(). A foreign one is a
 *   caller's broken precondition (a wrong argument), not a key that is missing remotely:
 *   `unknown_key` would send an operator looking for a deleted KEK, and would read, in metrics,
 *   like the key-state signal "not_found". Nothing calls a KMS before this check.
 */
import type { KekRef } from './types.js';
import { InvalidInputError, UnknownKeyError } from '../errors.js';

/** wrap() was handed a version this provider did not resolve (another provider, key or binding). */
export class ForeignWrapRefError extends InvalidInputError {}

/** unwrap() was handed a reference to a key this provider is not configured for. */
export class ForeignUnwrapRefError extends UnknownKeyError {}

/** The parts of a provider the check needs. */
export interface RefOwner {
  readonly kind: string;
  /** Non-secret description of the configured key (KekProvider.description). */
  readonly description: string;
  canUnwrap(ref: KekRef): boolean;
}

function named(ref: KekRef): string {
  const clip = (s: string): string => (s.length > 200 ? `${s.slice(0, 200)}…` : s);
  return `${clip(ref.provider)}:${clip(ref.key)} version ${clip(ref.version)}`;
}

export interface WrapRefCheck {
  /** Whether the provider owns the ref (default: `owner.canUnwrap(ref)`). */
  owns?: boolean;
  /** Replaces the default explanation (e.g. "resolved with a different EncryptionContext"). */
  why?: string;
}

/** Throws ForeignWrapRefError unless `owner` owns `ref`. Call it before anything else in wrap(). */
export function assertWrapRef(owner: RefOwner, ref: KekRef, check: WrapRefCheck = {}): void {
  if (check.owns ?? owner.canUnwrap(ref)) return;
  throw new ForeignWrapRefError(
    `${owner.kind} wrap: asked to wrap with ${named(ref)}, which is not a version this provider resolved for ${owner.description}${check.why ? ` (${check.why})` : ''}; wrap only with a version from this provider's currentVersion()`,
  );
}

/** The error for unwrap() with a ref `owner` does not own; `hint` says what to configure. */
export function foreignUnwrapRef(owner: RefOwner, ref: KekRef, hint?: string): ForeignUnwrapRefError {
  return new ForeignUnwrapRefError(
    `${owner.kind} unwrap: ${named(ref)} is not this provider's key (${owner.description}); ${hint ?? 'add that key as the provider or under decryptOnly'}`,
  );
}

/** Throws foreignUnwrapRef(…) unless `owner.canUnwrap(ref)`. Call it before anything else in unwrap(). */
export function assertUnwrapRef(owner: RefOwner, ref: KekRef, hint?: string): void {
  if (!owner.canUnwrap(ref)) throw foreignUnwrapRef(owner, ref, hint);
}
