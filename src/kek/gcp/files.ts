import { readFileSync } from 'node:fs';
import { InvalidInputError } from '../errors.js';

/** Reads a file named by config, or says which field to fix (never prints the contents). */
export function readConfiguredFile(path: string, field: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new InvalidInputError(
      `${field}: cannot read ${path} (${code}): check the path and that the plugin's user can read it`,
    );
  }
}
