/**
 * `rotate`: local key files only. Adds a new key version and makes it primary; or, staged
 * (`--stage`), adds one every node decrypts with but none writes with until `--promote V`; or
 * (`--retire N`) removes an old version, only after a census of etcd finds nothing under it
 * (`--force` overrides). The file is rewritten atomically (temp file, fsync, rename) with mode
 * 0600 and its owner kept; a lock file next to it stops two rotations racing. A running plugin
 * picks the change up without a restart (file watch, plus the periodic probe).
 *
 * Cloud KEKs rotate in the cloud (see docs/runbooks/rotate-kek.md); the plugin follows them.
 */
import { closeSync, openSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Command } from 'commander';
import { ConfigError, InvalidInputError } from '../errors.js';
import {
  addVersion,
  promoteVersion,
  readKeyFile,
  retireVersion,
  stageVersion,
  writeKeyFile,
  zeroKeyFile,
} from '../kek/local/keyfile.js';
import { countWhere, underVersion, type CensusReport } from './census/census.js';
import { addResourceFlags, censusWithProgress, EXIT_CHECK_FAILED } from './census/command.js';
import { addEtcdFlags, hasEtcdFlags } from './etcd/connect.js';
import { providerFlags } from '../config/schema.js';
import { addConfigFlags } from './flags.js';
import { printPkcs11Rotation, rotatePkcs11 } from './rotate-pkcs11.js';

export interface RotateResult {
  keyFile: string;
  id: string;
  action: 'rotated' | 'staged' | 'promoted' | 'retired';
  /** The new primary (rotate, promote), the staged version (stage) or the retired version (retire). */
  version: number;
  primary: number;
  versions: number[];
  /** Versions loaded for decryption but not written with yet. */
  staged: number[];
}

export interface RotateOptions {
  retire?: number;
  stage?: boolean;
  promote?: number;
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
      } else if (options.stage) {
        version = stageVersion(file, options.now);
        action = 'staged';
      } else if (options.promote !== undefined) {
        promoteVersion(file, options.promote);
        version = options.promote;
        action = 'promoted';
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
        staged: file.keys.filter((k) => k.staged).map((k) => k.version),
      };
    } finally {
      zeroKeyFile(file);
    }
  });
}

/**
 * Checks a retirement would be accepted by the key-file rules (not the primary, present, …)
 * without writing anything; returns the key file id.
 */
export function checkRetirable(path: string, version: number, allowInsecurePermissions?: boolean): string {
  const { file } = readKeyFile(path, { allowInsecurePermissions });
  try {
    retireVersion(file, version);
    return file.id;
  } finally {
    zeroKeyFile(file);
  }
}

/** Objects still wrapped under version V of this key file, per resource. */
export function objectsUnder(
  report: CensusReport,
  keyFileId: string,
  version: number,
): { total: number; byResource: Record<string, number> } {
  return countWhere(report, (g) => g.kekProvider === 'local' && underVersion(String(version), keyFileId)(g));
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

function versionFlag(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new ConfigError(flag, 'expected a key version number');
  return n;
}

interface RotateFlags extends Record<string, unknown> {
  localKeyFile?: string;
  provider?: string;
  retire?: string;
  stage?: boolean;
  promote?: string;
  force?: boolean;
  localAllowInsecurePermissions?: boolean;
  json?: boolean;
}

export function registerRotate(program: Command): void {
  const cmd = program
    .command('rotate')
    .description(
      'local key file: add a new key version and make it primary (older versions stay for decryption); ' +
        '--stage a version every node loads but none writes with, then --promote it; or --retire an old ' +
        'version once a census of etcd finds no object under it. A running plugin picks changes up without a restart',
    )
    .option('--local-key-file <PATH>', 'the key file (see `keygen`)')
    .option('--provider <NAME>', 'local (default) or pkcs11: generate the next key version in the token')
    .option(
      '--stage',
      'add a new version for decryption only; copy the file to every node, then --promote it',
    )
    .option('--promote <VERSION>', 'make this (staged) version the primary: plugins start writing with it')
    .option(
      '--retire <VERSION>',
      'remove this old version: runs a census first (etcd and --encryption-config flags) and refuses while objects are under it',
    )
    .option(
      '--force',
      'with --retire: retire even without a census or with objects still under it (they become unreadable)',
    )
    .option(
      '--local-allow-insecure-permissions',
      'accept a key file readable by group/others (it is rewritten 0600)',
    )
    .option('--json', 'print the result as JSON');
  addEtcdFlags(cmd);
  addResourceFlags(cmd);
  addConfigFlags(cmd, providerFlags('pkcs11'));
  cmd.action(async (opts: RotateFlags) => {
    // --provider pkcs11: a separate path (src/cli/rotate-pkcs11.ts); the key-file code below is unchanged.
    if (opts.provider === 'pkcs11') return rotatePkcs11Command(opts);
    if (opts.provider !== undefined && opts.provider !== 'local')
      throw new ConfigError(
        '--provider',
        `expected local or pkcs11; ${opts.provider} keys rotate in the KMS`,
      );
    if (opts.localKeyFile === undefined)
      throw new ConfigError('--local-key-file', 'required (or --provider pkcs11 with the --pkcs11-* flags)');
    const localKeyFile = opts.localKeyFile;
    const retire = versionFlag('--retire', opts.retire);
    const promote = versionFlag('--promote', opts.promote);
    const modes = [retire !== undefined, promote !== undefined, opts.stage === true].filter(Boolean).length;
    if (modes > 1) throw new ConfigError('--stage', 'use one of --stage, --promote and --retire at a time');
    const allow = opts.localAllowInsecurePermissions;
    let census: { total: number; byResource: Record<string, number> } | undefined;
    if (retire !== undefined) {
      const keyFileId = checkRetirable(localKeyFile, retire, allow);
      const haveResources = opts.encryptionConfig !== undefined || opts.resource !== undefined;
      if (hasEtcdFlags(opts) || haveResources) {
        const report = await censusWithProgress(opts, `census before retiring version ${retire}`);
        if (report.interrupted) {
          process.stderr.write('census interrupted: nothing retired\n');
          process.exitCode = 130;
          return;
        }
        census = objectsUnder(report, keyFileId, retire);
        const unknown = countWhere(report, (g) => g.protection === 'unknown').total;
        if (unknown > 0)
          process.stderr.write(
            `warning: ${unknown} values could not be classified (see \`census\`); they are not counted as under version ${retire}\n`,
          );
        if (census.total > 0) {
          const per = Object.entries(census.byResource)
            .map(([r, n]) => `  ${r}: ${n}`)
            .join('\n');
          if (!opts.force) {
            process.stderr.write(
              `REFUSED: ${census.total} objects are still under version ${retire} of ${localKeyFile}:\n${per}\n` +
                're-encrypt them first (k8s-kms-plugin reencrypt), or --force to retire anyway (they become unreadable)\n',
            );
            process.exitCode = EXIT_CHECK_FAILED;
            return;
          }
          process.stderr.write(
            `warning: --force: ${census.total} objects are still under version ${retire} and become unreadable:\n${per}\n`,
          );
        }
      } else if (!opts.force) {
        throw new ConfigError(
          '--etcd-endpoints',
          `rotate --retire runs a census first to prove no object is still under version ${retire}: give the etcd flags ` +
            '(--etcd-endpoints, --etcd-cafile, --etcd-certfile, --etcd-keyfile) and --encryption-config FILE (or --resource), ' +
            'or --force to retire without checking',
        );
      } else {
        process.stderr.write(`warning: --force: retiring version ${retire} without a census of etcd\n`);
      }
      if (opts.force)
        process.stderr.write(
          `warning: backups (etcd snapshots) taken before the re-encryption may still need version ${retire}: keep a copy of this key file with them\n`,
        );
    }
    const r = rotateKeyFile(localKeyFile, {
      retire,
      promote,
      stage: opts.stage === true,
      allowInsecurePermissions: allow,
    });
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(census ? { ...r, census } : r)}\n`);
      return;
    }
    const list = `versions ${r.versions.join(', ')}${r.staged.length ? `; staged ${r.staged.join(', ')}` : ''}`;
    switch (r.action) {
      case 'rotated':
        process.stdout.write(
          `rotated ${r.keyFile}: new primary version ${r.primary} (${list}). ` +
            'Running plugins switch key_id after two probes; then re-encrypt: k8s-kms-plugin reencrypt --wait-for-key-id … ' +
            '(docs/runbooks/rotate-kek.md)\n',
        );
        break;
      case 'staged':
        process.stdout.write(
          `staged version ${r.version} in ${r.keyFile} (${list}): plugins load it for decryption, the primary stays ${r.primary}. ` +
            `Copy the file to every node, check each holds it (probe --expect-loaded ${r.version}), then rotate --promote ${r.version}\n`,
        );
        break;
      case 'promoted':
        process.stdout.write(
          `promoted version ${r.version} to primary in ${r.keyFile} (${list}). Copy the file to every node; ` +
            'plugins switch key_id after two probes\n',
        );
        break;
      case 'retired':
        process.stdout.write(
          `retired version ${r.version} from ${r.keyFile}: ${census ? 'the census found no object under it; ' : ''}` +
            `data wrapped under it can no longer be decrypted (${list}). Copy the file to every node; ` +
            'keep an old copy with any backup that predates the re-encryption\n',
        );
        break;
    }
  });
}

async function rotatePkcs11Command(opts: RotateFlags): Promise<void> {
  if (opts.retire !== undefined || opts.stage === true || opts.promote !== undefined)
    throw new ConfigError(
      '--provider pkcs11',
      'takes no --retire/--stage/--promote: disable or delete the key object on the token (docs/providers/pkcs11.md)',
    );
  printPkcs11Rotation(await rotatePkcs11(opts), opts.json === true);
}
