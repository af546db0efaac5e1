/**
 * Unix socket endpoints and their lifecycle.
 *
 *   unix:///abs/path.sock  a filesystem socket (parent dir created 0750 if missing; mode and group set)
 *   unix:///@name          a Linux abstract socket (what kube-apiserver dials for that endpoint);
 *                          needed for 1.27/1.28 with Node. Node's own bind pads abstract names to
 *                          108 bytes, which Go cannot dial, so these are bound by the native helper
 *                          (./abstract-socket.ts) with the exact length
 *
 * Safety: a stale socket (nothing accepts on it) is replaced; a live one, a regular file, a
 * directory or a symlink at the path is refused with a clear error, never deleted.
 */
import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, isAbsolute } from 'node:path';
import { InvalidInputError } from '../errors.js';

export type Endpoint =
  | { kind: 'path'; path: string; bindTarget: string; display: string }
  | { kind: 'abstract'; name: string; bindTarget: string; display: string };

/** Max bytes in sun_path minus the NUL. */
const MAX_SOCKET_PATH = 107;

export function parseEndpoint(listen: string): Endpoint {
  if (!listen.startsWith('unix:///')) {
    throw new InvalidInputError(
      `listen ${JSON.stringify(listen)}: expected unix:///absolute/path.sock or unix:///@name (three slashes)`,
    );
  }
  const rest = listen.slice('unix://'.length); // keeps the leading "/"
  if (rest.startsWith('/@')) {
    const name = rest.slice(2);
    if (name.length === 0 || name.includes('\0') || Buffer.byteLength(name) > MAX_SOCKET_PATH - 1) {
      throw new InvalidInputError(
        `listen ${JSON.stringify(listen)}: abstract socket name must be 1-106 bytes`,
      );
    }
    return { kind: 'abstract', name, bindTarget: `unix:\0${name}`, display: `unix:///@${name}` };
  }
  const path = rest;
  if (!isAbsolute(path) || path.includes('\0'))
    throw new InvalidInputError(`listen ${JSON.stringify(listen)}: the socket path must be absolute`);
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    throw new InvalidInputError(
      `listen: socket path is ${Buffer.byteLength(path)} bytes; Unix sockets allow at most ${MAX_SOCKET_PATH}`,
    );
  }
  return { kind: 'path', path, bindTarget: `unix://${path}`, display: `unix://${path}` };
}

/** True if something accepts a connection on the filesystem socket at `path` within `timeoutMs`. */
export function socketIsLive(path: string, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ path });
    const done = (live: boolean): void => {
      clearTimeout(timer);
      sock.removeAllListeners();
      sock.destroy();
      resolve(live);
    };
    const timer = setTimeout(() => done(true), timeoutMs); // a listener that doesn't answer still owns it
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/**
 * Makes `path` ready to bind: creates a missing parent (0750), replaces a stale socket, and
 * refuses anything else. Returns what it did, for the log.
 */
export async function prepareSocketPath(path: string): Promise<'fresh' | 'replaced-stale'> {
  const dir = dirname(path);
  try {
    const st = statSync(dir);
    if (!st.isDirectory())
      throw new InvalidInputError(`socket directory ${dir} exists but is not a directory`);
  } catch (err) {
    if (err instanceof InvalidInputError) throw err;
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    mkdirSync(dir, { recursive: true, mode: 0o750 });
  }
  let st;
  try {
    st = lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'fresh';
    throw err;
  }
  if (st.isSymbolicLink())
    throw new InvalidInputError(
      `refusing to use ${path}: it is a symlink (remove it yourself if that is intended)`,
    );
  if (st.isDirectory()) throw new InvalidInputError(`refusing to use ${path}: it is a directory`);
  if (!st.isSocket())
    throw new InvalidInputError(
      `refusing to use ${path}: it is a regular file or device, not a socket (remove or move it)`,
    );
  if (await socketIsLive(path)) {
    throw new InvalidInputError(
      `another process is serving on ${path}: stop it first (refusing to take over a live socket)`,
    );
  }
  unlinkSync(path);
  return 'replaced-stale';
}

/** Sets mode and (optionally) group on a bound filesystem socket. */
export function applySocketPermissions(path: string, mode: number, group: string | number | undefined): void {
  chmodSync(path, mode);
  if (group !== undefined) chownSync(path, -1, resolveGroup(group));
}

/** A group name or numeric gid → gid (names looked up in /etc/group). */
export function resolveGroup(group: string | number): number {
  if (typeof group === 'number') return group;
  if (/^\d+$/.test(group)) return Number(group);
  let text = '';
  try {
    text = readFileSync('/etc/group', 'utf8');
  } catch {
    // fall through to the error below
  }
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  throw new InvalidInputError(
    `socketGroup: no group named ${JSON.stringify(group)} in /etc/group; use a numeric gid`,
  );
}

/** Removes our socket file if it is still the one we bound (same inode). */
export function removeSocket(path: string, ino: number | undefined): void {
  try {
    const st = lstatSync(path);
    if (st.isSocket() && (ino === undefined || st.ino === ino)) unlinkSync(path);
  } catch {
    // already gone
  }
}
