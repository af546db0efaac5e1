/**
 * The local key file: one or more versioned 256-bit KEKs, one of them primary.
 *
 *   {"kind":"k8s-kms-plugin/local-kek","formatVersion":1,"id":"<uuid>","primary":2,
 *    "keys":[{"version":1,"created":"<ISO>","key":"<base64>"}, {"version":2,...}]}
 *
 * A key may be `"staged": true` (`rotate --stage`): every plugin loads it and decrypts with it,
 * none wraps with it until `rotate --promote` makes it primary. A file with a staged key is written
 * as formatVersion 2, so an older plugin (which would wrap with the newest version) refuses the
 * new file and keeps its loaded keys instead of writing with a version other nodes may lack.
 *
 * `id` names the key file (a random UUID made at keygen); it goes into KEK references so two
 * different key files never collide, and two plugin processes on the same file agree.
 * The file holds key material: mode 0600, written atomically (temp file + fsync + rename).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import {
  closeSync,
  fchownSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { InvalidInputError, PermissionDeniedError } from '../errors.js';

export const KEYFILE_KIND = 'k8s-kms-plugin/local-kek';

export interface LocalKey {
  version: number;
  created: string;
  key: Buffer;
  /** Loaded for decryption everywhere, not yet used for writes (rotate --stage). */
  staged?: boolean;
}

export interface KeyFile {
  id: string;
  primary: number;
  keys: LocalKey[];
}

export function generateKeyFile(now = new Date()): KeyFile {
  return {
    id: randomUUID(),
    primary: 1,
    keys: [{ version: 1, created: now.toISOString(), key: randomBytes(32) }],
  };
}

/** Adds a new version and makes it primary (what `rotate` does). Returns the new version number. */
export function addVersion(file: KeyFile, now = new Date()): number {
  const staged = file.keys.find((k) => k.staged);
  if (staged)
    throw new InvalidInputError(
      `version ${staged.version} is staged: promote it (rotate --promote ${staged.version}) instead of adding another`,
    );
  const version = Math.max(0, ...file.keys.map((k) => k.version)) + 1;
  file.keys.push({ version, created: now.toISOString(), key: randomBytes(32) });
  file.primary = version;
  return version;
}

/**
 * Adds a new version that is loaded for decryption but not written with (`rotate --stage`).
 * Returns the new version number. At most one staged version at a time.
 */
export function stageVersion(file: KeyFile, now = new Date()): number {
  const staged = file.keys.filter((k) => k.staged).map((k) => k.version);
  if (staged.length > 0) {
    throw new InvalidInputError(
      `version ${staged.join(', ')} is already staged: promote it (rotate --promote ${staged[0]}) or retire it first`,
    );
  }
  const version = Math.max(0, ...file.keys.map((k) => k.version)) + 1;
  file.keys.push({ version, created: now.toISOString(), key: randomBytes(32), staged: true });
  return version;
}

/**
 * Makes a version primary (`rotate --promote V`), normally the staged one. Refuses a version older
 * than the primary: a key_id must never go back.
 */
export function promoteVersion(file: KeyFile, version: number): void {
  const key = file.keys.find((k) => k.version === version);
  if (!key)
    throw new InvalidInputError(
      `version ${version} is not in the key file (have: ${file.keys.map((k) => k.version).join(', ')})`,
    );
  if (file.primary === version && !key.staged)
    throw new InvalidInputError(`version ${version} is already the primary`);
  if (version < file.primary)
    throw new InvalidInputError(
      `version ${version} is older than the primary (${file.primary}): a key_id never goes back; stage a new version instead`,
    );
  delete key.staged;
  file.primary = version;
}

/** The version the plugin wraps with: the newest version that is not staged. */
export function newestWritable(file: KeyFile): LocalKey {
  return file.keys.filter((k) => !k.staged).reduce((a, b) => (b.version > a.version ? b : a));
}

/**
 * Removes an old version (data wrapped under it becomes undecryptable). Refuses the primary, and
 * any version newer than it: the plugin always wraps with the newest version, so retiring that one
 * would make an older version current again under its old key_id.
 */
export function retireVersion(file: KeyFile, version: number): void {
  if (file.primary === version) {
    throw new InvalidInputError(
      `version ${version} is the primary: rotate to a new version first, then retire it after re-encrypting`,
    );
  }
  const newest = newestWritable(file).version;
  if (version > file.primary && file.keys.some((k) => k.version === version && !k.staged)) {
    throw new InvalidInputError(
      `version ${version} is newer than the primary (${file.primary}) and the plugin wraps with the newest version (${newest}): ` +
        `run \`rotate\` first (it adds a newer primary), then retire ${version} once no data needs it`,
    );
  }
  const i = file.keys.findIndex((k) => k.version === version);
  if (i < 0)
    throw new InvalidInputError(
      `version ${version} is not in the key file (have: ${file.keys.map((k) => k.version).join(', ')})`,
    );
  file.keys[i].key.fill(0);
  file.keys.splice(i, 1);
}

export function serializeKeyFile(file: KeyFile): string {
  return `${JSON.stringify(
    {
      kind: KEYFILE_KIND,
      formatVersion: file.keys.some((k) => k.staged) ? 2 : 1,
      id: file.id,
      primary: file.primary,
      keys: file.keys.map((k) => ({
        version: k.version,
        created: k.created,
        key: k.key.toString('base64'),
        ...(k.staged ? { staged: true } : {}),
      })),
    },
    null,
    2,
  )}\n`;
}

export function parseKeyFile(text: string, path: string): KeyFile {
  const bad = (why: string): never => {
    throw new InvalidInputError(
      `key file ${path}: ${why} (create one with \`k8s-kms-plugin keygen --out ${path}\`)`,
    );
  };
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return bad('not valid JSON');
  }
  if (typeof doc !== 'object' || doc === null) return bad('not a JSON object');
  const o = doc as Record<string, unknown>;
  if (o.kind !== KEYFILE_KIND) bad(`"kind" must be "${KEYFILE_KIND}"`);
  if (o.formatVersion !== 1 && o.formatVersion !== 2) bad('unsupported "formatVersion" (expected 1 or 2)');
  if (typeof o.id !== 'string' || !/^[A-Za-z0-9-]{8,64}$/.test(o.id))
    bad('"id" must be the UUID keygen wrote');
  if (!Array.isArray(o.keys) || o.keys.length === 0) bad('"keys" must list at least one key');
  const keys: LocalKey[] = [];
  for (const [i, raw] of (o.keys as unknown[]).entries()) {
    const k = raw as Record<string, unknown>;
    if (typeof k !== 'object' || k === null) bad(`keys[${i}] is not an object`);
    if (typeof k.version !== 'number' || !Number.isSafeInteger(k.version) || k.version < 1)
      bad(`keys[${i}].version must be a positive integer`);
    if (typeof k.created !== 'string' || Number.isNaN(Date.parse(k.created)))
      bad(`keys[${i}].created must be an ISO timestamp`);
    if (typeof k.key !== 'string') bad(`keys[${i}].key must be base64`);
    const key = Buffer.from(k.key as string, 'base64');
    if (key.length !== 32) bad(`keys[${i}].key must be 32 bytes (base64 of a 256-bit key)`);
    if (keys.some((x) => x.version === k.version)) bad(`version ${String(k.version)} appears twice`);
    if (k.staged !== undefined && typeof k.staged !== 'boolean')
      bad(`keys[${i}].staged must be true or false`);
    keys.push({
      version: k.version as number,
      created: k.created as string,
      key,
      ...(k.staged === true ? { staged: true } : {}),
    });
  }
  if (typeof o.primary !== 'number' || !keys.some((k) => k.version === o.primary))
    bad('"primary" must name one of the versions in "keys"');
  if (keys.some((k) => k.staged && k.version === o.primary))
    bad('the primary version cannot be staged (use `rotate --promote`)');
  return { id: o.id as string, primary: o.primary as number, keys };
}

export interface ReadOptions {
  allowInsecurePermissions?: boolean;
}

/** Reads and validates a key file, refusing one that group or others can read (unless allowed). */
export function readKeyFile(
  path: string,
  options: ReadOptions = {},
): { file: KeyFile; mtimeMs: number; ino: number } {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new InvalidInputError(
        `key file ${path} does not exist: create it with \`k8s-kms-plugin keygen --out ${path}\``,
      );
    if (code === 'EACCES')
      throw new PermissionDeniedError(
        `key file ${path} is not readable by this user: check its owner and mode`,
      );
    throw new InvalidInputError(`key file ${path}: cannot stat (${code ?? 'error'})`);
  }
  if (!st.isFile()) throw new InvalidInputError(`key file ${path} is not a regular file`);
  if ((st.mode & 0o077) !== 0 && !options.allowInsecurePermissions) {
    throw new PermissionDeniedError(
      `key file ${path} is accessible by group or others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}): ` +
        `run \`chmod 600 ${path}\`, or set local.allowInsecurePermissions: true (development only)`,
    );
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new PermissionDeniedError(
      `key file ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  return { file: parseKeyFile(text, path), mtimeMs: st.mtimeMs, ino: st.ino };
}

/**
 * Writes atomically with mode 0600: a temp file in the same directory, fsync, rename over.
 * `keepOwner`: give the new file the owner and group of the file it replaces (so `rotate` run as
 * root does not leave a file the plugin's user cannot read); fails rather than change the owner.
 */
export function writeKeyFile(
  path: string,
  file: KeyFile,
  options: { exclusive?: boolean; keepOwner?: boolean } = {},
): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (options.exclusive) {
    try {
      statSync(path);
      throw new InvalidInputError(
        `${path} already exists: refusing to overwrite a key file (that would destroy the keys in it)`,
      );
    } catch (err) {
      if (err instanceof InvalidInputError) throw err;
    }
  }
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let owner: { uid: number; gid: number } | undefined;
  if (options.keepOwner) {
    try {
      const st = statSync(path);
      owner = { uid: st.uid, gid: st.gid };
    } catch {
      owner = undefined; // nothing to keep
    }
  }
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    if (owner && (owner.uid !== process.getuid?.() || owner.gid !== process.getgid?.())) {
      try {
        fchownSync(fd, owner.uid, owner.gid);
      } catch {
        throw new PermissionDeniedError(
          `cannot give the new ${path} its current owner ${owner.uid}:${owner.gid}: run this as that user or as root`,
        );
      }
    }
    writeSync(fd, serializeKeyFile(file));
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkSync(tmp);
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, path);
  try {
    const dfd = openSync(dir, 'r');
    fsyncSync(dfd);
    closeSync(dfd);
  } catch {
    // directory fsync is best effort (not supported everywhere)
  }
}

export function zeroKeyFile(file: KeyFile): void {
  for (const k of file.keys) k.key.fill(0);
}
