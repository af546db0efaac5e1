/**
 * The user PIN, read only from `pkcs11.pinFile`. The PIN never goes into a log line, a metric
 * label or an error message; errors name the file. A trailing newline (as `echo` writes) is
 * dropped.
 */
import { readFileSync, statSync } from 'node:fs';
import { ConfigError } from '../../errors.js';
import { InvalidInputError, readConfigFile, unreadableFile } from '../errors.js';

const FIELD = 'pkcs11.pinFile';

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

/**
 * Reads the PIN file. At start-up (`startUp`) through the shared config-file reader: an unreadable
 * or malformed file is a ConfigError (exit 2). Later (a login after the file changed) the same
 * failures are InvalidInputError: the call fails, the process stays.
 */
export function readPinFile(file: string, startUp = false): PinRead {
  let raw: Buffer;
  let stamp: string | undefined;
  const fail = (message: string): Error =>
    startUp ? new ConfigError(FIELD, message) : new InvalidInputError(`pkcs11: ${FIELD}: ${message}`);
  if (startUp) {
    stamp = pinStamp(file);
    raw = readConfigFile(file, FIELD, 'the PIN file');
  } else {
    try {
      stamp = pinStamp(file);
      raw = readFileSync(file);
    } catch (err) {
      throw fail(unreadableFile(file, err, 'the PIN file'));
    }
  }
  const pin = raw.toString('utf8').replace(/\r?\n$/, '');
  raw.fill(0);
  if (pin.length === 0 || pin.includes('\n')) {
    throw fail(
      `the PIN file ${file} must hold exactly one line with the user PIN (it is ${pin.length === 0 ? 'empty' : 'several lines'})`,
    );
  }
  return { pin, stamp: stamp ?? 'unknown' };
}
