/**
 * Bounded LRU of unwrapped DEKs with an idle TTL. The cache owns every buffer it holds and zeroes
 * it when the entry leaves: eviction, expiry, replacement, delete or clear (shutdown).
 */

export type CacheEvent = 'hit' | 'miss' | 'eviction' | 'expiry' | 'clear';

export interface DekCacheOptions {
  maxEntries: number;
  /** An entry unused for this long is dropped (and zeroed). */
  ttlMs: number;
  now?: () => number;
  onEvent?: (event: CacheEvent, size: number) => void;
}

interface Entry {
  dek: Buffer;
  lastUsed: number;
}

export class DekCache {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;

  constructor(private readonly options: DekCacheOptions) {
    if (options.maxEntries < 1) throw new RangeError('DekCache maxEntries must be at least 1');
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * The cached DEK (owned by the cache: use it synchronously, never keep it). With `countMiss`
   * false an absent or expired entry emits no 'miss' (a caller that will look again and count it).
   */
  get(id: string, countMiss = true): Buffer | undefined {
    const e = this.entries.get(id);
    if (!e) {
      if (countMiss) this.emit('miss');
      return undefined;
    }
    const now = this.now();
    if (now - e.lastUsed > this.options.ttlMs) {
      this.drop(id, e, 'expiry');
      if (countMiss) this.emit('miss');
      return undefined;
    }
    e.lastUsed = now;
    this.entries.delete(id);
    this.entries.set(id, e);
    this.emit('hit');
    return e.dek;
  }

  has(id: string): boolean {
    const e = this.entries.get(id);
    return e !== undefined && this.now() - e.lastUsed <= this.options.ttlMs;
  }

  /** Stores `dek`; the cache takes ownership of the buffer (callers pass a copy they won't reuse). */
  set(id: string, dek: Buffer): void {
    const old = this.entries.get(id);
    if (old) {
      if (old.dek !== dek) old.dek.fill(0);
      this.entries.delete(id);
    }
    this.entries.set(id, { dek, lastUsed: this.now() });
    this.sweep();
    while (this.entries.size > this.options.maxEntries) {
      const [oldestId, oldest] = this.entries.entries().next().value as [string, Entry];
      this.drop(oldestId, oldest, 'eviction');
    }
  }

  delete(id: string): void {
    const e = this.entries.get(id);
    if (e) this.drop(id, e);
  }

  /** Drops expired entries (called on every set, and by the owner periodically). */
  sweep(): void {
    const now = this.now();
    for (const [id, e] of this.entries) {
      if (now - e.lastUsed > this.options.ttlMs) this.drop(id, e, 'expiry');
    }
  }

  /** Zeroes and drops everything (shutdown). */
  clear(): void {
    for (const e of this.entries.values()) e.dek.fill(0);
    this.entries.clear();
    this.emit('clear');
  }

  private drop(id: string, e: Entry, event?: CacheEvent): void {
    e.dek.fill(0);
    this.entries.delete(id);
    this.emit(event);
  }

  private emit(event: CacheEvent | undefined): void {
    if (event) this.options.onEvent?.(event, this.entries.size);
  }
}
