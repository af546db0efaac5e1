/**
 * A stream table for Node's HTTP/2 sessions that does not drag every call into the old generation.
 *
 * Node keeps a session's open streams in a Map (`session[kState].streams`: set when a stream
 * opens, deleted when it is destroyed). V8 rehashes a Map's backing table every few dozen
 * set/delete pairs, and the table it replaces keeps its entries and a pointer to the new table
 * (for iterators still walking it). The scavenger treats every old-generation slot as a root, dead
 * or not. So once one table has been promoted, the chain of tables after it, every stream in them
 * and everything those streams hold (grpc-js's call, its listeners, metadata, buffers) survive
 * each young collection and are promoted, until a full collection. Measured on a grpc-js server
 * whose handlers do nothing, at c=16: ~500 KB promoted per young collection (of ~3 MB allocated),
 * a full collection every ~100 ms; with this table, 16 KB, and 6 full collections where there
 * were 40 (docs/benchmarks.md, issue 16, fourth pass).
 *
 * StreamTable is that Map's interface over a plain object keyed by stream id: its backing store
 * is replaced when it grows or shrinks, and the store it replaces points nowhere. Keys that are
 * not stream ids (never seen from Node) go to an ordinary Map, so it behaves as a Map for any key.
 *
 * adoptStreamTable() swaps it into a session. It relies on Node internals (a symbol described
 * 'state' on the session, holding `streams`), checked on every session: when they are not as
 * expected it changes nothing and says why, and the server works as before, with more GC.
 */

/** HTTP/2 stream identifiers: 31-bit unsigned integers (RFC 9113 §5.1.1). */
const MAX_STREAM_ID = 0x7fffffff;

function isStreamId(key: unknown): key is number {
  return typeof key === 'number' && Number.isInteger(key) && key >= 0 && key <= MAX_STREAM_ID;
}

export class StreamTable<V> {
  /** Stream id → value. Integer keys keep V8's elements in id order, which is insertion order. */
  private byId: Record<number, V> = Object.create(null) as Record<number, V>;
  private ids = 0;
  /** Anything else (not used by Node; here so that the table is a Map for every key). */
  private other: Map<unknown, V> | undefined;

  get size(): number {
    return this.ids + (this.other?.size ?? 0);
  }

  get(key: unknown): V | undefined {
    return isStreamId(key) ? (key in this.byId ? this.byId[key] : undefined) : this.other?.get(key);
  }

  has(key: unknown): boolean {
    return isStreamId(key) ? key in this.byId : (this.other?.has(key) ?? false);
  }

  set(key: unknown, value: V): this {
    if (isStreamId(key)) {
      if (!(key in this.byId)) this.ids++;
      this.byId[key] = value;
    } else {
      (this.other ??= new Map()).set(key, value);
    }
    return this;
  }

  delete(key: unknown): boolean {
    if (!isStreamId(key)) return this.other?.delete(key) ?? false;
    if (!(key in this.byId)) return false;
    delete this.byId[key];
    this.ids--;
    return true;
  }

  clear(): void {
    this.byId = Object.create(null) as Record<number, V>;
    this.ids = 0;
    this.other = undefined;
  }

  /**
   * Calls fn for each entry, in insertion order for stream ids (they only grow), then the other
   * keys. Entries deleted by fn before they are reached are skipped, as Map.forEach does (Node
   * destroys streams from inside forEach); stream ids added by fn are not visited.
   */
  forEach(fn: (value: V, key: unknown, table: this) => void): void {
    for (const [key, value] of this.entries()) fn(value, key, this);
  }

  *entries(): IterableIterator<[unknown, V]> {
    for (const name of Object.keys(this.byId)) {
      const id = Number(name);
      if (id in this.byId) yield [id, this.byId[id]!];
    }
    if (this.other) yield* this.other.entries();
  }

  *keys(): IterableIterator<unknown> {
    for (const [key] of this.entries()) yield key;
  }

  *values(): IterableIterator<V> {
    for (const [, value] of this.entries()) yield value;
  }

  [Symbol.iterator](): IterableIterator<[unknown, V]> {
    return this.entries();
  }
}

/** What a session's stream container must offer to be replaced (what Node calls on it). */
interface MapLike {
  readonly size: number;
  get(key: unknown): unknown;
  set(key: unknown, value: unknown): unknown;
  delete(key: unknown): boolean;
  forEach(fn: (value: unknown, key: unknown) => void): void;
}

function isMapLike(value: unknown): value is MapLike {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v['size'] === 'number' &&
    typeof v['get'] === 'function' &&
    typeof v['set'] === 'function' &&
    typeof v['delete'] === 'function' &&
    typeof v['forEach'] === 'function'
  );
}

export type Adoption = { adopted: true } | { adopted: false; reason: string };

/**
 * Replaces an HTTP/2 session's stream Map with a StreamTable holding the same entries. Idempotent;
 * never throws: when the session is not shaped as expected it is left alone and the reason said.
 */
export function adoptStreamTable(session: object): Adoption {
  const stateKey = Object.getOwnPropertySymbols(session).find((s) => s.description === 'state');
  if (stateKey === undefined) return { adopted: false, reason: 'the session has no state symbol' };
  const state = (session as Record<symbol, unknown>)[stateKey];
  if (typeof state !== 'object' || state === null || !('streams' in state)) {
    return { adopted: false, reason: 'the session state has no streams' };
  }
  const holder = state as { streams: unknown };
  if (holder.streams instanceof StreamTable) return { adopted: true };
  if (!isMapLike(holder.streams)) {
    return { adopted: false, reason: 'the session streams are not a Map' };
  }
  const table = new StreamTable<unknown>();
  holder.streams.forEach((value, key) => table.set(key, value));
  holder.streams = table;
  return { adopted: true };
}

/**
 * Adopts the stream table of every session of a grpc-js server's HTTP/2 servers: those open now
 * and those to come. grpc-js (1.14) keeps its HTTP/2 servers, bound or made for injected
 * connections, in a private Map `http2Servers` whose values hold the live `sessions`; call
 * watch() again after each bind or injector, it skips the servers it already watches.
 */
export class SessionWatcher {
  private readonly watched = new WeakSet<object>();

  constructor(private readonly report: (adoption: Adoption) => void) {}

  watch(grpcServer: object): void {
    const servers = (grpcServer as { http2Servers?: unknown }).http2Servers;
    if (!(servers instanceof Map)) {
      this.report({ adopted: false, reason: 'grpc-js has no http2Servers map' });
      return;
    }
    for (const [server, info] of servers as Map<unknown, unknown>) {
      if (typeof server !== 'object' || server === null || this.watched.has(server)) continue;
      const emitter = server as { prependListener?: unknown };
      if (typeof emitter.prependListener !== 'function') {
        this.report({ adopted: false, reason: 'a grpc-js http2 server is not an EventEmitter' });
        continue;
      }
      this.watched.add(server);
      (server as NodeJS.EventEmitter).prependListener('session', (session: object) =>
        this.report(adoptStreamTable(session)),
      );
      const sessions = (info as { sessions?: unknown } | undefined)?.sessions;
      if (sessions instanceof Set)
        for (const session of sessions) this.report(adoptStreamTable(session as object));
    }
  }
}
