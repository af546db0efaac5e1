/**
 * `rotate`: local key files only. Adds a new key version and makes it primary, or (`--retire N`)
 * removes an old version. The file is rewritten atomically (temp file, fsync, rename) with mode
 * 0600 and its owner kept; a lock file next to it stops two rotations racing. A running plugin
 * picks the change up without a restart (file watch, plus the periodic probe).
 *
 * Cloud KEKs rotate in the cloud (see docs/runbooks/rotate-kek.md); the plugin follows them.
 */
import { closeSync, openSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Command } from 'commander';
import { ConfigError, InvalidInputError } from '../errors.js';
import { addVersion, readKeyFile, retireVersion, writeKeyFile, zeroKeyFile } from '../kek/local/keyfile.js';
import { pkcs11Flags } from '../config/providers/pkcs11.js';
import { addConfigFlags } from './flags.js';
import { printPkcs11Rotation, rotatePkcs11 } from './rotate-pkcs11.js';

export interface RotateResult {
  keyFile: string;
  id: string;
  action: 'rotated' | 'retired';
  /** The new primary (rotate) or the retired version (retire). */
  version: number;
  primary: number;
  versions: number[];
}

export interface RotateOptions {
  retire?: number;
  allowInsecurePermissions?: boolean;
  now?: Date;
}

export function rotateKeyFile(path: string, options: RotateOptions = {}): RotateResult {
  return withLock(path, () => {
    const { file } = readKeyFile(path, { allowInsecurePermissions: options.allowInsecurePermissions });
    try {
      let version: number;
      let action: RotateResult['action'];
      if (options.retire !== undefined) {
        retireVersion(file, options.retire);
        version = options.retire;
        action = 'retired';
      } else {
        version = addVersion(file, options.now);
        action = 'rotated';
      }
      writeKeyFile(path, file, { keepOwner: true });
      return {
        keyFile: path,
        id: file.id,
        action,
        version,
        primary: file.primary,
        versions: file.keys.map((k) => k.version),
      };
    } finally {
      zeroKeyFile(file);
    }
  });
}

function withLock<T>(path: string, fn: () => T): T {
  const lock = join(dirname(path), `.${basename(path)}.lock`);
  let fd: number;
  try {
    fd = openSync(lock, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new InvalidInputError(
        `another rotate is running on ${path} (lock file ${lock}); if none is, remove the stale lock file`,
      );
    }
    throw new InvalidInputError(
      `cannot create the lock file ${lock} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  try {
    return fn();
  } finally {
    closeSync(fd);
    unlinkSync(lock);
  }
}

export function registerRotate(program: Command): void {
  const cmd = program
    .command('rotate')
    .description(
      'local key file: add a new key version and make it primary (older versions stay for decryption), ' +
        'or --retire an old version. A running plugin picks it up without a restart',
    )
    .option('--local-key-file <PATH>', 'the key file (see `keygen`)')
    .option('--provider <NAME>', 'local (default) or pkcs11: generate the next key version in the token')
    .option(
      '--retire <VERSION>',
      'remove this old version instead (refused for the primary; data under it becomes unreadable)',
    )
    .option(
      '--local-allow-insecure-permissions',
      'accept a key file readable by group/others (it is rewritten 0600)',
    )
    .option('--json', 'print the result as JSON')
    .action(
      async (opts: {
        localKeyFile?: string;
        provider?: string;
        retire?: string;
        localAllowInsecurePermissions?: boolean;
        json?: boolean;
      }) => {
        // --provider pkcs11: a separate path (src/cli/rotate-pkcs11.ts); the key-file code below is unchanged.
        if (opts.provider === 'pkcs11') return rotatePkcs11Command(opts);
        if (opts.provider !== undefined && opts.provider !== 'local')
          throw new ConfigError(
            '--provider',
            `expected local or pkcs11; ${opts.provider} keys rotate in the KMS`,
          );
        if (opts.localKeyFile === undefined)
          throw new ConfigError(
            '--local-key-file',
            'required (or --provider pkcs11 with the --pkcs11-* flags)',
          );
        let retire: number | undefined;
        if (opts.retire !== undefined) {
          retire = Number(opts.retire);
          if (!Number.isSafeInteger(retire) || retire < 1)
            throw new ConfigError('--retire', 'expected a key version number');
        }
        const r = rotateKeyFile(opts.localKeyFile, {
          retire,
          allowInsecurePermissions: opts.localAllowInsecurePermissions,
        });
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(r)}\n`);
        } else if (r.action === 'rotated') {
          process.stdout.write(
            `rotated ${r.keyFile}: new primary version ${r.primary} (versions ${r.versions.join(', ')}). ` +
              'Running plugins switch key_id after two probes; start the storage migration 3 + N + M minutes from now ' +
              '(docs/runbooks/rotate-kek.md)\n',
          );
        } else {
          process.stdout.write(
            `retired version ${r.version} from ${r.keyFile}: data wrapped under it can no longer be decrypted (versions left ${r.versions.join(', ')})\n`,
          );
        }
      },
    );
  addConfigFlags(cmd, pkcs11Flags);
}

async function rotatePkcs11Command(opts: { retire?: string; json?: boolean }): Promise<void> {
  if (opts.retire !== undefined)
    throw new ConfigError('--retire', 'not for pkcs11: disable or delete the key object on the token');
  printPkcs11Rotation(await rotatePkcs11(opts), opts.json === true);
}
