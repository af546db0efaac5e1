/** Shared by the GCP unit tests: a key name, its version 1, and "this throws a PluginError". */
import { PluginError } from '../../../../src/errors.js';
import { thrownAs } from '../../../support/config-error.js';

export const KEY = 'projects/p-1/locations/global/keyRings/r/cryptoKeys/k';
export const V1 = `${KEY}/cryptoKeyVersions/1`;

/** Runs `fn`, expects it to throw a PluginError, and returns it. */
export function thrown(fn: () => unknown): PluginError {
  return thrownAs(PluginError, fn);
}
