import { generateKeyFile, writeKeyFile, zeroKeyFile } from '../kek/local/keyfile.js';

/** Creates a new local key file (mode 0600). Refuses to overwrite an existing file. */
export function keygen(out: string): { id: string; version: number } {
  const file = generateKeyFile();
  try {
    writeKeyFile(out, file, { exclusive: true });
    return { id: file.id, version: file.primary };
  } finally {
    zeroKeyFile(file);
  }
}
