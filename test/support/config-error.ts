/** Runs `fn`, expects it to throw an instance of `cls`, and returns the error for more assertions. */
import { expect } from '@jest/globals';
import { ConfigError } from '../../src/errors.js';

export function thrownAs<E extends Error>(cls: abstract new (...args: never[]) => E, fn: () => unknown): E {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(cls);
    return err as E;
  }
  throw new Error(`expected a ${cls.name}`);
}

/** Runs `fn`, expects it to throw a ConfigError (exit 2 in the CLI), and returns it. */
export function configError(fn: () => unknown): ConfigError {
  return thrownAs(ConfigError, fn);
}
