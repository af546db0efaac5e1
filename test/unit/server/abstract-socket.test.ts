/**
 * Exact-length Linux abstract sockets (native helper): the name the kernel holds, EADDRINUSE,
 * clean failures, the client forwarder, and graceful drain of injected gRPC connections.
 * Needs build/Release/abstract_socket.node (`npm run build`).
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { status as grpcStatus } from '@grpc/grpc-js';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { connect, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { silentLogger } from '../../../src/observability/logger.js';
import {
  abstractSocketAddon,
  connectAbstract,
  forwardToAbstract,
  listenAbstract,
} from '../../../src/server/abstract-socket.js';
import { KmsClient } from '../../../src/server/client.js';
import { KmsServer, type EnvelopeOps, type StatusSource } from '../../../src/server/server.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function uniqueName(): string {
  return `kkp-abs-${process.pid}-${randomUUID().slice(0, 8)}`;
}

/**
 * Every listening socket whose name starts with `@name`, as /proc/net/unix shows it (a padded
 * name would show as "@name@@@…"). Accepted connections also show the name, so only listeners
 * (flag __SO_ACCEPTCON, 0x10000) count.
 */
function boundNames(name: string): string[] {
  return readFileSync('/proc/net/unix', 'utf8')
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f.length >= 8 && (parseInt(f[3], 16) & 0x10000) !== 0 && f[7].startsWith(`@${name}`))
    .map((f) => f[7]);
}

async function echoServer(name: string): Promise<Server> {
  const server = await listenAbstract(name, (s) => s.pipe(s));
  cleanups.push(() => new Promise((r) => server.close(r)));
  return server;
}

async function roundTrip(socket: Socket, payload: Buffer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  socket.on('data', (d: Buffer) => {
    chunks.push(d);
    got += d.length;
    if (got >= payload.length) socket.end();
  });
  socket.write(payload);
  await once(socket, 'close');
  return Buffer.concat(chunks);
}

function errorOf(fn: () => unknown): NodeJS.ErrnoException {
  try {
    fn();
  } catch (err) {
    return err as NodeJS.ErrnoException;
  }
  throw new Error('expected an error');
}

describe('native abstract socket helper', () => {
  it('binds exactly "@name" (no padding to 108 bytes) and a Node client reaches it through connect()', async () => {
    const name = uniqueName();
    await echoServer(name);
    expect(boundNames(name)).toEqual([`@${name}`]);
    const payload = randomBytes(64 * 1024);
    expect((await roundTrip(connectAbstract(name), payload)).equals(payload)).toBe(true);
  });

  it('refuses a second listener on a live name with EADDRINUSE, and frees the name on close', async () => {
    const name = uniqueName();
    const first = await echoServer(name);
    const err = errorOf(() => abstractSocketAddon().listen(name, 16));
    expect(err.code).toBe('EADDRINUSE');
    expect(err.message).toContain(`@${name}`);
    await expect(listenAbstract(name, () => undefined)).rejects.toMatchObject({ code: 'EADDRINUSE' });

    await new Promise((r) => first.close(r));
    expect(boundNames(name)).toEqual([]);
    await echoServer(name); // the name is free again
    expect(boundNames(name)).toEqual([`@${name}`]);
  });

  it('fails cleanly (ECONNREFUSED, no fd leak) when nothing listens on the name', () => {
    const fdsBefore = countFds();
    for (let i = 0; i < 20; i += 1) {
      const err = errorOf(() => connectAbstract(uniqueName()));
      expect(err.code).toBe('ECONNREFUSED');
      expect(err.syscall).toBe('connect');
    }
    expect(countFds()).toBeLessThanOrEqual(fdsBefore);
  });

  it('rejects names that are empty, too long or contain NUL, instead of truncating them', () => {
    const addon = abstractSocketAddon();
    expect(errorOf(() => addon.listen('', 16)).code).toBe('ERR_INVALID_ARG_VALUE');
    expect(errorOf(() => addon.connect('x'.repeat(108))).code).toBe('ERR_INVALID_ARG_VALUE');
    // 107 ASCII bytes + one 4-byte character: must not be cut down to the first 107 bytes.
    expect(errorOf(() => addon.connect(`${'x'.repeat(107)}\u{1F600}`)).code).toBe('ERR_INVALID_ARG_VALUE');
    expect(errorOf(() => addon.connect('a\0b')).code).toBe('ERR_INVALID_ARG_VALUE');
    expect(errorOf(() => addon.connect(42 as unknown as string)).code).toBe('ERR_INVALID_ARG_TYPE');
  });
});

describe('client forwarder', () => {
  it('pipes a private filesystem socket to the abstract name and removes its temp dir on close', async () => {
    const name = uniqueName();
    await echoServer(name);
    const fwd = forwardToAbstract(name);
    cleanups.push(() => fwd.close());
    expect(existsSync(fwd.path)).toBe(true);
    const payload = randomBytes(4096);
    const sock = connect({ path: fwd.path });
    await once(sock, 'connect');
    expect((await roundTrip(sock, payload)).equals(payload)).toBe(true);
    fwd.close();
    expect(existsSync(dirname(fwd.path))).toBe(false);
  });

  it('reports why the abstract name is unreachable', async () => {
    const name = uniqueName();
    const client = new KmsClient(`unix:///@${name}`, { waitForReady: false });
    cleanups.push(() => client.close());
    await expect(client.status(1000)).rejects.toMatchObject({
      code: grpcStatus.UNAVAILABLE,
      details: expect.stringContaining('ECONNREFUSED'),
    });
  });
});

/** A KMS server on an abstract socket with stub status and a decrypt that waits `delayMs`. */
async function abstractKmsServer(
  delayMs: number,
): Promise<{ name: string; server: KmsServer; client: KmsClient }> {
  const name = uniqueName();
  const statusSource: StatusSource = {
    status: () => ({ ok: true, version: 'v2', healthz: 'ok', keyId: 'k1' }),
  };
  const envelope: EnvelopeOps = {
    encrypt: () => ({ ciphertext: Buffer.from('c'), keyId: 'k1', annotations: {} }),
    decrypt: (_ct, _keyId, _ann, signal) =>
      new Promise((resolve, reject) => {
        const s = typeof signal === 'function' ? signal() : signal;
        const t = setTimeout(() => resolve(Buffer.from('plain')), delayMs);
        s.addEventListener('abort', () => {
          clearTimeout(t);
          reject(s.reason);
        });
      }),
  };
  const server = new KmsServer({
    listen: `unix:///@${name}`,
    socketMode: 0o600,
    maxPlaintextBytes: 963,
    status: statusSource,
    envelope,
    logger: silentLogger(),
  });
  await server.start();
  cleanups.push(() => server.stop(100));
  const client = new KmsClient(`unix:///@${name}`);
  cleanups.push(() => client.close());
  return { name, server, client };
}

describe('KmsServer on an abstract socket', () => {
  it('serves gRPC on the exact name, drains an in-flight call on stop, then frees the name', async () => {
    const { name, server, client } = await abstractKmsServer(300);
    expect(boundNames(name)).toEqual([`@${name}`]);
    expect(await client.status()).toEqual({ version: 'v2', healthz: 'ok', key_id: 'k1' });
    const inflight = client.decrypt({ ciphertext: Buffer.from('c'), key_id: 'k1', uid: randomUUID() }, 5000);
    inflight.catch(() => undefined); // awaited below; never an unhandled rejection if an expect fails first
    await new Promise((r) => setTimeout(r, 50));
    expect(server.inFlightCalls).toBe(1);
    const stopping = server.stop(3000);
    await new Promise((r) => setImmediate(r)); // the listener's fd closes on the next loop turn
    expect(boundNames(name)).toEqual([]); // no new connections once stop() begins
    expect(errorOf(() => connectAbstract(name)).code).toBe('ECONNREFUSED');
    expect(Buffer.from((await inflight).plaintext).toString()).toBe('plain');
    await stopping;
    expect(server.inFlightCalls).toBe(0);
  });

  it('cuts injected connections whose calls outlive the drain deadline', async () => {
    const { server, client } = await abstractKmsServer(10_000);
    const inflight = client.decrypt(
      { ciphertext: Buffer.from('c'), key_id: 'k1', uid: randomUUID() },
      20_000,
    );
    inflight.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 50));
    expect(server.inFlightCalls).toBe(1);
    const t0 = Date.now();
    await server.stop(200);
    expect(Date.now() - t0).toBeLessThan(2000);
    await expect(inflight).rejects.toMatchObject({ code: expect.any(Number) });
  });
});

/** Open file descriptors of this process. */
function countFds(): number {
  return readdirSync('/proc/self/fd').length;
}
