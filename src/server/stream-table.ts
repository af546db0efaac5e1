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
 * StreamTable is that Map's interface over an open-addressing table keyed by stream id: arrays
 * replaced only when it grows or shrinks, and emptied then, so nothing dead points at a stream.
 * Keys that are not stream ids (never seen from Node) go to an ordinary Map, so it behaves as a
 * Map for any key.
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

/** A free slot of StreamTable.slotIds. */
const EMPTY = -1;
/** Slots to start with: 16 open streams at a load of one half. */
const MIN_SLOTS = 32;

export class StreamTable<V> {
  /*
   * Stream ids in an open-addressing table: slot (id >>> 1) & mask, then the next slots (linear
   * probing; ids grow by 2, so consecutive streams take consecutive slots). At most half the
   * slots are used; a delete moves later entries of the same run back (no tombstones). Ids live
   * in an Int32Array and values in an array allocated once per size, so set/get/delete allocate
   * nothing, and a replaced array is emptied so it points at no stream.
   */
  private slotIds = new Int32Array(MIN_SLOTS).fill(EMPTY);
  private slotValues: Array<V | undefined> = new Array<V | undefined>(MIN_SLOTS).fill(undefined);
  private mask = MIN_SLOTS - 1;
  private ids = 0;
  /** Anything else (not used by Node; here so that the table is a Map for every key). */
  private other: Map<unknown, V> | undefined;

  get size(): number {
    return this.ids + (this.other?.size ?? 0);
  }

  /** The slot holding id, or -1. */
  private find(id: number): number {
    const slotIds = this.slotIds;
    for (let i = (id >>> 1) & this.mask; ; i = (i + 1) & this.mask) {
      const at = slotIds[i]!;
      if (at === id) return i;
      if (at === EMPTY) return -1;
    }
  }

  get(key: unknown): V | undefined {
    if (!isStreamId(key)) return this.other?.get(key);
    const i = this.find(key);
    return i < 0 ? undefined : this.slotValues[i];
  }

  has(key: unknown): boolean {
    return isStreamId(key) ? this.find(key) >= 0 : (this.other?.has(key) ?? false);
  }

  set(key: unknown, value: V): this {
    if (!isStreamId(key)) {
      (this.other ??= new Map()).set(key, value);
      return this;
    }
    const found = this.find(key);
    if (found >= 0) {
      this.slotValues[found] = value;
      return this;
    }
    if ((this.ids + 1) * 2 > this.slotIds.length) this.resize(this.slotIds.length * 2);
    this.place(key, value);
    this.ids++;
    return this;
  }

  delete(key: unknown): boolean {
    if (!isStreamId(key)) return this.other?.delete(key) ?? false;
    let hole = this.find(key);
    if (hole < 0) return false;
    const { slotIds, slotValues, mask } = this;
    // Backward-shift deletion: an entry after the hole whose home slot is not cyclically within
    // (hole, i] would no longer be found past the hole, so it moves into it.
    for (let i = (hole + 1) & mask; slotIds[i] !== EMPTY; i = (i + 1) & mask) {
      const home = (slotIds[i]! >>> 1) & mask;
      if (((i - home) & mask) >= ((i - hole) & mask)) {
        slotIds[hole] = slotIds[i]!;
        slotValues[hole] = slotValues[i];
        hole = i;
      }
    }
    slotIds[hole] = EMPTY;
    slotValues[hole] = undefined;
    this.ids--;
    if (this.slotIds.length > MIN_SLOTS && this.ids * 8 < this.slotIds.length)
      this.resize(this.slotIds.length / 2);
    return true;
  }

  clear(): void {
    this.slotIds.fill(EMPTY);
    this.slotValues.fill(undefined);
    this.ids = 0;
    this.other = undefined;
  }

  private place(id: number, value: V): void {
    let i = (id >>> 1) & this.mask;
    while (this.slotIds[i] !== EMPTY) i = (i + 1) & this.mask;
    this.slotIds[i] = id;
    this.slotValues[i] = value;
  }

  private resize(slots: number): void {
    const oldIds = this.slotIds;
    const oldValues = this.slotValues;
    this.slotIds = new Int32Array(slots).fill(EMPTY);
    this.slotValues = new Array<V | undefined>(slots).fill(undefined);
    this.mask = slots - 1;
    for (let i = 0; i < oldIds.length; i++) {
      if (oldIds[i] !== EMPTY) this.place(oldIds[i]!, oldValues[i] as V);
    }
    oldValues.fill(undefined); // a dead array in the old generation must not keep streams alive
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
    const ids: number[] = [];
    for (const id of this.slotIds) if (id !== EMPTY) ids.push(id);
    ids.sort((a, b) => a - b);
    for (const id of ids) {
      const i = this.find(id);
      if (i >= 0) yield [id, this.slotValues[i] as V];
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
