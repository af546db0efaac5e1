/**
 * Linux abstract Unix sockets with exact-length names, through the native helper
 * (native/abstract_socket.c → build/Release/abstract_socket.node, built by `npm run build`).
 *
 * Why: Node 20's net module pads an abstract name to the whole 108-byte sun_path
 * ("@name@@@@…" in /proc/net/unix), while Go (kube-apiserver, kmsv2probe) dials `unix:///@name`
 * as the exact-length address "\0name". The helper binds/connects with the exact length and
 * returns the file descriptor, which net.Server / net.Socket then own (and close).
 *
 * The helper is loaded lazily, so filesystem sockets never need it.
 *
 * grpc-js cannot dial an exact-length abstract name either, so clients go through
 * `forwardToAbstract`: a private filesystem socket (fresh 0700 temp dir) whose connections are
 * piped to the abstract name.
 */
import { closeSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, Socket, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InternalError } from '../errors.js';

/** What the native helper exports. */
export interface AbstractSocketAddon {
  /** A listening SOCK_STREAM fd bound to "\0name" (exact length). Throws with `code` EADDRINUSE etc. */
  listen(name: string, backlog: number): number;
  /** A connected, non-blocking SOCK_STREAM fd to "\0name". Throws with `code` ECONNREFUSED etc. */
  connect(name: string): number;
}

/** Where `npm run build` puts the helper (same depth from src/server and dist/server). */
export const ADDON_PATH = fileURLToPath(new URL('../../build/Release/abstract_socket.node', import.meta.url));

let cached: AbstractSocketAddon | undefined;

/** Loads the native helper once; a clear error if it is missing or cannot be loaded. */
export function abstractSocketAddon(): AbstractSocketAddon {
  if (cached) return cached;
  if (process.platform !== 'linux') {
    throw new InternalError(
      `abstract sockets (unix:///@name) exist only on Linux, not on ${process.platform}`,
    );
  }
  try {
    cached = createRequire(import.meta.url)(ADDON_PATH) as AbstractSocketAddon;
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND';
    throw new InternalError(
      `abstract sockets need the native helper: run npm run build (${ADDON_PATH} ${missing ? 'is missing' : `cannot be loaded: ${(err as Error).message}`})`,
      { cause: err },
    );
  }
  return cached;
}

/**
 * Listens on the abstract socket `name` (exact length). Each accepted connection goes to
 * `onConnection`, which is attached before the first accept. Rejects with the helper's error
 * (`code` EADDRINUSE when another process holds the name).
 */
export async function listenAbstract(
  name: string,
  onConnection: (socket: Socket) => void,
  backlog = 511,
): Promise<Server> {
  const fd = abstractSocketAddon().listen(name, backlog);
  const server = createServer(onConnection);
  await new Promise<void>((resolve, reject) => {
    // Node owns the fd once it has opened it, and closes it itself if listen fails after that.
    server.once('error', reject);
    server.listen({ fd, backlog }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

/** A connected net.Socket to the abstract socket `name` (exact length). Throws ECONNREFUSED etc. */
export function connectAbstract(name: string): Socket {
  const fd = abstractSocketAddon().connect(name);
  try {
    return new Socket({ fd, readable: true, writable: true });
  } catch (err) {
    closeSync(fd); // the handle never took ownership
    throw err;
  }
}

/** A private filesystem socket whose connections are piped to an abstract socket. */
export interface AbstractForwarder {
  /** The filesystem socket to dial (inside a fresh 0700 temp dir). */
  readonly path: string;
  /** The last failure to reach the abstract name (cleared by a successful connection). */
  readonly lastError: string | undefined;
  /** Stops the forwarder, drops its connections and removes the temp dir. Idempotent. */
  close(): void;
}

const liveForwarders = new Set<AbstractForwarder>();
let exitHookInstalled = false;

/**
 * Starts a forwarder to the abstract socket `name`. It is listening when this returns (a Unix
 * socket is bound synchronously), and it never keeps the process alive on its own.
 */
export function forwardToAbstract(name: string): AbstractForwarder {
  abstractSocketAddon(); // fail now, with the clear message, if the helper is missing
  const dir = mkdtempSync(join(tmpdir(), 'kkp-fwd-'));
  const path = join(dir, 'fwd.sock');
  const sockets = new Set<Socket>();
  let lastError: string | undefined;
  let closed = false;

  const server = createServer((down) => {
    down.unref();
    let up: Socket;
    try {
      up = connectAbstract(name);
    } catch (err) {
      lastError = (err as Error).message;
      down.destroy();
      return;
    }
    lastError = undefined;
    up.unref();
    sockets.add(down).add(up);
    const drop = (): void => {
      sockets.delete(down);
      sockets.delete(up);
      down.destroy();
      up.destroy();
    };
    for (const s of [down, up]) s.once('error', drop).once('close', drop);
    down.pipe(up);
    up.pipe(down);
  });
  server.on('error', (err) => {
    lastError = `forwarder ${path}: ${err.message}`;
  });
  server.unref();
  server.listen(path);

  const forwarder: AbstractForwarder = {
    path,
    get lastError() {
      return lastError;
    },
    close() {
      if (closed) return;
      closed = true;
      liveForwarders.delete(forwarder);
      server.close();
      for (const s of sockets) s.destroy();
      sockets.clear();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  liveForwarders.add(forwarder);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const f of [...liveForwarders]) f.close();
    });
  }
  return forwarder;
}
