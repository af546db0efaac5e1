/** Runs `fn`, expects it to throw a ConfigError (exit 2 in the CLI), and returns it for more assertions. */
import { expect } from '@jest/globals';
import { ConfigError } from '../../src/errors.js';

export function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}
