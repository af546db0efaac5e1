/**
 * The user PIN, read only from `pkcs11.pinFile`. The PIN never goes into a log line, a metric
 * label or an error message; errors name the file. A trailing newline (as `echo` writes) is
 * dropped.
 */
import { readFileSync, statSync } from 'node:fs';
import { InvalidInputError } from '../errors.js';

export interface PinRead {
  pin: string;
  /** Identifies this version of the file (inode, size, mtime), to notice a change. */
  stamp: string;
}

export function pinStamp(file: string): string | undefined {
  try {
    const st = statSync(file);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return undefined;
  }
}

export function readPinFile(file: string): PinRead {
  let raw: Buffer;
  let stamp: string | undefined;
  try {
    stamp = pinStamp(file);
    raw = readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new InvalidInputError(
      `pkcs11: cannot read the PIN file ${file} (${code}); check pkcs11.pinFile (--pkcs11-pin-file) and that the plugin's user can read it`,
    );
  }
  const pin = raw.toString('utf8').replace(/\r?\n$/, '');
  raw.fill(0);
  if (pin.length === 0 || pin.includes('\n')) {
    throw new InvalidInputError(
      `pkcs11: the PIN file ${file} must hold exactly one line with the user PIN (it is ${pin.length === 0 ? 'empty' : 'several lines'})`,
    );
  }
  return { pin, stamp: stamp ?? 'unknown' };
}
