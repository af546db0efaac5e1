/**
 * StreamTable behaves as the Map it replaces in Node's HTTP/2 sessions, and adoptStreamTable() /
 * SessionWatcher swap it into real sessions (node:http2 and a grpc-js server) without changing
 * what the sessions do: requests, graceful close, destroy with open streams.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import http2 from 'node:http2';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import {
  adoptStreamTable,
  SessionWatcher,
  StreamTable,
  type Adoption,
} from '../../../src/server/stream-table.js';
import { tempDir } from '../../support/plugin-process.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function socketPath(): string {
  const d = tempDir('kkp-st-');
  cleanups.push(() => d.cleanup());
  return join(d.path, 'h2.sock');
}

/** The session's stream container, reached the way adoptStreamTable() reaches it. */
function streamsOf(session: object): unknown {
  const key = Object.getOwnPropertySymbols(session).find((s) => s.description === 'state');
  return key === undefined ? undefined : (session as Record<symbol, { streams?: unknown }>)[key]?.streams;
}

/** A small deterministic PRNG (mulberry32), so a failing sequence can be replayed. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('StreamTable', () => {
  it('agrees with a Map over 20 000 random set/get/has/delete/clear steps, for stream ids and other keys', () => {
    const odd: unknown[] = ['1', -1, 1.5, 0x80000000, NaN, null, undefined, {}, Symbol('k')];
    for (const seed of [1, 2, 3, 4, 5]) {
      const rnd = prng(seed);
      const model = new Map<unknown, number>();
      const table = new StreamTable<number>();
      const keyPool: unknown[] = [0, 0x7fffffff, ...odd];
      let nextId = 1;
      for (let step = 0; step < 4000; step++) {
        const r = rnd();
        let key: unknown;
        if (r < 0.35) {
          key = nextId;
          nextId += 2;
          keyPool.push(key);
        } else {
          key = keyPool[Math.floor(rnd() * keyPool.length)];
        }
        const op = rnd();
        if (op < 0.45) {
          expect(table.set(key, step)).toBe(table);
          model.set(key, step);
        } else if (op < 0.9) {
          expect(table.delete(key)).toBe(model.delete(key));
        } else if (op < 0.999) {
          expect(table.get(key)).toBe(model.get(key));
          expect(table.has(key)).toBe(model.has(key));
        } else {
          table.clear();
          model.clear();
        }
        expect(table.size).toBe(model.size);
      }
      // Same entries; stream ids in insertion (= numeric) order, then the other keys.
      const entries = [...model];
      const ids = entries.filter(
        ([k]) => typeof k === 'number' && Number.isInteger(k) && k >= 0 && k <= 0x7fffffff,
      );
      const others = entries.filter((e) => !ids.includes(e));
      expect([...table]).toEqual([...ids.sort((x, y) => (x[0] as number) - (y[0] as number)), ...others]);
      expect([...table.keys()]).toEqual([...table].map(([k]) => k));
      expect([...table.values()]).toEqual([...table].map(([, v]) => v));
      for (const key of keyPool) expect(table.get(key)).toBe(model.get(key));
    }
  });

  it('agrees with a Map when ids collide on one slot and runs wrap past the end of the table', () => {
    // With 32 slots (a table of up to 16 entries), 1 + 64j all start at slot 0 and 63 + 64j at
    // slot 31, so the runs wrap round; deletes from the middle of runs move entries back.
    for (const seed of [11, 12, 13]) {
      const rnd = prng(seed);
      const keys = Array.from({ length: 12 }, (_, j) => [1 + 64 * j, 63 + 64 * j]).flat();
      const model = new Map<number, number>();
      const table = new StreamTable<number>();
      for (let step = 0; step < 3000; step++) {
        const key = keys[Math.floor(rnd() * keys.length)]!;
        if (rnd() < 0.5) {
          table.set(key, step);
          model.set(key, step);
        } else {
          expect(table.delete(key)).toBe(model.delete(key));
        }
        expect(table.size).toBe(model.size);
        for (const k of keys) expect(table.get(k)).toBe(model.get(k));
      }
    }
  });

  it('grows past many open streams and shrinks back, losing none', () => {
    const table = new StreamTable<number>();
    for (let id = 1; id < 20_000; id += 2) table.set(id, id);
    expect(table.size).toBe(10_000);
    for (let id = 1; id < 20_000; id += 2) if (id % 3) expect(table.delete(id)).toBe(true);
    expect(table.size).toBe(3333);
    for (let id = 1; id < 20_000; id += 2) expect(table.get(id)).toBe(id % 3 ? undefined : id);
    expect([...table.keys()]).toEqual(Array.from({ length: 3333 }, (_, i) => 3 + 6 * i));
    for (const id of [...table.keys()]) table.delete(id);
    expect(table.size).toBe(0);
    table.set(7, 7);
    expect([...table]).toEqual([[7, 7]]);
  });

  it('keeps a stored undefined apart from a missing key, as a Map does', () => {
    const table = new StreamTable<undefined>();
    table.set(3, undefined);
    expect(table.has(3)).toBe(true);
    expect(table.size).toBe(1);
    expect(table.delete(3)).toBe(true);
    expect(table.delete(3)).toBe(false);
    expect(table.size).toBe(0);
  });

  it('forEach skips entries that fn deletes before reaching them, like Map.forEach (Node destroys streams in it)', () => {
    const fill = <T extends { set(k: unknown, v: string): unknown }>(t: T): T => {
      for (const id of [1, 3, 5, 7, 9]) t.set(id, `s${id}`);
      t.set('x', 'sx');
      return t;
    };
    const run = (t: StreamTable<string> | Map<unknown, string>): string[] => {
      const seen: string[] = [];
      t.forEach((value, key, self) => {
        seen.push(value);
        self.delete(key);
        if (key === 3) self.delete(7);
        if (key === 5) self.delete('x');
      });
      return seen;
    };
    const table = fill(new StreamTable<string>());
    expect(run(table)).toEqual(run(fill(new Map<unknown, string>())));
    expect(run(fill(new StreamTable<string>()))).toEqual(['s1', 's3', 's5', 's9']);
    expect(table.size).toBe(0);
  });
});

describe('adoptStreamTable', () => {
  it('says why and changes nothing when the session is not shaped as Node 20 makes it', () => {
    const state = Symbol('state');
    expect(adoptStreamTable({})).toEqual({ adopted: false, reason: 'the session has no state symbol' });
    expect(adoptStreamTable({ [state]: null })).toEqual({
      adopted: false,
      reason: 'the session state has no streams',
    });
    const notMap = { streams: [1, 2] };
    expect(adoptStreamTable({ [state]: notMap })).toEqual({
      adopted: false,
      reason: 'the session streams are not a Map',
    });
    expect(notMap.streams).toEqual([1, 2]);
  });

  it('moves the entries a session already has into the table, once', () => {
    const a = { id: 1 };
    const b = { id: 3 };
    const holder = {
      streams: new Map<number, object>([
        [1, a],
        [3, b],
      ]) as unknown,
    };
    const session = { [Symbol('state')]: holder };
    expect(adoptStreamTable(session)).toEqual({ adopted: true });
    const table = holder.streams;
    expect(table).toBeInstanceOf(StreamTable);
    expect([...(table as StreamTable<object>)]).toEqual([
      [1, a],
      [3, b],
    ]);
    expect(adoptStreamTable(session)).toEqual({ adopted: true });
    expect(holder.streams).toBe(table);
  });

  it('a real node:http2 session serves 300 requests (100 at once), closes gracefully, and destroys open streams', async () => {
    const path = socketPath();
    const server = http2.createServer();
    const adoptions: Adoption[] = [];
    const serverSessions: http2.ServerHttp2Session[] = [];
    server.on('session', (session) => {
      adoptions.push(adoptStreamTable(session));
      serverSessions.push(session);
    });
    const held: http2.ServerHttp2Stream[] = [];
    server.on('stream', (stream, headers) => {
      if (headers[':path'] === '/hold') {
        held.push(stream);
        return;
      }
      stream.respond({ ':status': 200 });
      stream.end(String(headers[':path']));
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));

    const client = http2.connect('http://localhost', { createConnection: () => netConnect(path) });
    cleanups.push(() => void client.destroy());
    const get = (p: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const req = client.request({ ':path': p });
        let body = '';
        req.setEncoding('utf8');
        req.on('data', (chunk: string) => (body += chunk));
        req.on('end', () => resolve(body));
        req.on('error', reject);
        req.end();
      });
    for (let i = 0; i < 200; i++) expect(await get(`/s${i}`)).toBe(`/s${i}`);
    const many = await Promise.all(Array.from({ length: 100 }, (_, i) => get(`/c${i}`)));
    expect(many).toEqual(Array.from({ length: 100 }, (_, i) => `/c${i}`));

    expect(adoptions).toEqual([{ adopted: true }]);
    const [session] = serverSessions;
    const table = streamsOf(session!) as StreamTable<unknown>;
    expect(table).toBeInstanceOf(StreamTable);
    await new Promise((resolve) => setImmediate(resolve));
    expect(table.size).toBe(0);

    // Open streams are in the table, and destroying the session destroys them (Node's forEach).
    const holds = [get('/hold'), get('/hold')].map((p) => p.catch((err: Error) => err));
    while (held.length < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(table.size).toBe(2);
    const closed = held.map((s) => new Promise((resolve) => s.once('close', resolve)));
    session!.destroy();
    await Promise.all(closed);
    expect(held.every((s) => s.destroyed)).toBe(true);
    expect(table.size).toBe(0);
    await Promise.all(holds);

    // A second connection closes gracefully: the session ends once its table is empty.
    const client2 = http2.connect('http://localhost', { createConnection: () => netConnect(path) });
    cleanups.push(() => void client2.destroy());
    await new Promise<void>((resolve, reject) => {
      const req = client2.request({ ':path': '/last' });
      req.on('response', () => req.resume());
      req.on('end', resolve);
      req.on('error', reject);
      req.end();
    });
    const session2 = serverSessions[1]!;
    expect(streamsOf(session2)).toBeInstanceOf(StreamTable);
    const session2Closed = new Promise((resolve) => session2.once('close', resolve));
    client2.close();
    await session2Closed;
    expect(adoptions).toEqual([{ adopted: true }, { adopted: true }]);
  });
});

describe('SessionWatcher', () => {
  it('says so when the grpc-js server keeps no http2Servers map', () => {
    const seen: Adoption[] = [];
    new SessionWatcher((a) => seen.push(a)).watch({});
    expect(seen).toEqual([{ adopted: false, reason: 'grpc-js has no http2Servers map' }]);
  });

  it("adopts the tables of a grpc-js server's sessions: those open before watch() and those after, once per server", async () => {
    const path = socketPath();
    const server = new Server();
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix://${path}`, ServerCredentials.createInsecure(), (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    cleanups.push(() => void server.forceShutdown());
    const connect = async (): Promise<http2.ClientHttp2Session> => {
      const c = http2.connect('http://localhost', { createConnection: () => netConnect(path) });
      cleanups.push(() => void c.destroy());
      await new Promise((resolve) => c.once('remoteSettings', resolve));
      return c;
    };
    await connect(); // a session that exists before watch()
    const seen: Adoption[] = [];
    const watcher = new SessionWatcher((a) => seen.push(a));
    watcher.watch(server);
    expect(seen).toEqual([{ adopted: true }]);
    watcher.watch(server); // the same server again: not re-watched
    expect(seen).toHaveLength(1);
    await connect();
    expect(seen).toEqual([{ adopted: true }, { adopted: true }]);
  });
});
