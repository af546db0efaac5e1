/** Shared by the GCP unit tests: a key name, its version 1, and "this throws a PluginError". */
import { expect } from '@jest/globals';
import { PluginError } from '../../../../src/errors.js';

export const KEY = 'projects/p-1/locations/global/keyRings/r/cryptoKeys/k';
export const V1 = `${KEY}/cryptoKeyVersions/1`;

/** Runs `fn`, expects it to throw a PluginError, and returns it. */
export function thrown(fn: () => unknown): PluginError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PluginError);
    return err as PluginError;
  }
  throw new Error('expected a throw');
}
