import { describe, expect, it } from '@jest/globals';
import { DekCache, type CacheEvent } from '../../../src/envelope/cache.js';

const key = (b: number): Buffer => Buffer.alloc(32, b);
const isZero = (b: Buffer): boolean => b.every((x) => x === 0);

function make(maxEntries = 3, ttlMs = 1000) {
  let t = 1000;
  const events: Array<[CacheEvent, number]> = [];
  const cache = new DekCache({
    maxEntries,
    ttlMs,
    now: () => t,
    onEvent: (e, size) => events.push([e, size]),
  });
  return {
    cache,
    events,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

describe('DekCache', () => {
  it('rejects maxEntries < 1', () => {
    expect(() => new DekCache({ maxEntries: 0, ttlMs: 1 })).toThrow(RangeError);
  });

  it('stores and returns the same buffer; hit/miss events', () => {
    const { cache, events } = make();
    const k = key(1);
    cache.set('a', k);
    expect(cache.get('a')).toBe(k);
    expect(cache.get('b')).toBeUndefined();
    expect(events).toEqual([
      ['hit', 1],
      ['miss', 1],
    ]);
    expect(cache.has('a')).toBe(true);
    expect(cache.has('b')).toBe(false);
  });

  it('get(id, false) counts no miss for an absent or expired entry, and still a hit and an expiry', () => {
    const { cache, events, advance } = make(3, 1000);
    const k = key(1);
    cache.set('a', k);
    expect(cache.get('b', false)).toBeUndefined();
    expect(cache.get('a', false)).toBe(k);
    advance(1001);
    expect(cache.get('a', false)).toBeUndefined();
    expect(events).toEqual([
      ['hit', 1],
      ['expiry', 0],
    ]);
    expect(isZero(k)).toBe(true);
  });

  it('never holds more than maxEntries; evicts the least recently set and zeroes it', () => {
    const { cache, events } = make(3);
    const bufs = [key(1), key(2), key(3), key(4), key(5)];
    bufs.forEach((b, i) => cache.set(`k${i}`, b));
    expect(cache.size).toBe(3);
    expect(isZero(bufs[0])).toBe(true);
    expect(isZero(bufs[1])).toBe(true);
    expect(bufs.slice(2).every((b) => !isZero(b))).toBe(true);
    expect(cache.has('k0')).toBe(false);
    expect(cache.has('k1')).toBe(false);
    expect(cache.has('k4')).toBe(true);
    expect(events.filter(([e]) => e === 'eviction')).toEqual([
      ['eviction', 3],
      ['eviction', 3],
    ]);
  });

  it('get refreshes recency (LRU, not FIFO)', () => {
    const { cache } = make(3);
    const a = key(1);
    const b = key(2);
    cache.set('a', a);
    cache.set('b', b);
    cache.set('c', key(3));
    expect(cache.get('a')).toBe(a); // a is now most recent; b is the oldest
    cache.set('d', key(4));
    expect(cache.has('a')).toBe(true);
    expect(cache.has('b')).toBe(false);
    expect(isZero(b)).toBe(true);
    expect(isZero(a)).toBe(false);
  });

  it('has() does not refresh recency', () => {
    const { cache } = make(2);
    cache.set('a', key(1));
    cache.set('b', key(2));
    expect(cache.has('a')).toBe(true);
    cache.set('c', key(3));
    expect(cache.has('a')).toBe(false);
    expect(cache.has('b')).toBe(true);
  });

  it('idle TTL: an entry unused for longer than ttl expires on get, and is zeroed', () => {
    const { cache, events, advance } = make(3, 1000);
    const a = key(1);
    cache.set('a', a);
    advance(1000);
    expect(cache.get('a')).toBe(a); // exactly ttl: still valid; refreshes lastUsed
    advance(1000);
    expect(cache.has('a')).toBe(true);
    advance(1);
    expect(cache.has('a')).toBe(false);
    expect(cache.get('a')).toBeUndefined();
    expect(isZero(a)).toBe(true);
    expect(cache.size).toBe(0);
    expect(events.slice(-2)).toEqual([
      ['expiry', 0],
      ['miss', 0],
    ]);
  });

  it('sweep drops (and zeroes) only expired entries', () => {
    const { cache, advance, events } = make(5, 100);
    const old = key(1);
    cache.set('old', old);
    advance(60);
    const fresh = key(2);
    cache.set('fresh', fresh);
    advance(50); // old is 110 ms idle, fresh 50 ms
    cache.sweep();
    expect(cache.size).toBe(1);
    expect(isZero(old)).toBe(true);
    expect(isZero(fresh)).toBe(false);
    expect(events.at(-1)).toEqual(['expiry', 1]);
  });

  it('set sweeps expired entries first (they never count against the bound)', () => {
    const { cache, advance } = make(2, 100);
    const a = key(1);
    const b = key(2);
    cache.set('a', a);
    advance(200);
    cache.set('b', b);
    expect(isZero(a)).toBe(true);
    expect(cache.size).toBe(1);
    expect(cache.get('b')).toBe(b);
  });

  it('replacing an entry zeroes the old buffer but not the new one', () => {
    const { cache } = make();
    const old = key(1);
    const neu = key(2);
    cache.set('a', old);
    cache.set('a', neu);
    expect(isZero(old)).toBe(true);
    expect(cache.get('a')).toBe(neu);
    expect(isZero(neu)).toBe(false);
    expect(cache.size).toBe(1);
    // Setting the very same buffer again must not zero it.
    cache.set('a', neu);
    expect(isZero(neu)).toBe(false);
  });

  it('delete zeroes and removes', () => {
    const { cache } = make();
    const a = key(1);
    cache.set('a', a);
    cache.delete('a');
    cache.delete('missing');
    expect(isZero(a)).toBe(true);
    expect(cache.size).toBe(0);
    expect(cache.get('a')).toBeUndefined();
  });

  it('clear zeroes everything and emits clear', () => {
    const { cache, events } = make(5);
    const bufs = [key(1), key(2), key(3)];
    bufs.forEach((b, i) => cache.set(`k${i}`, b));
    cache.clear();
    expect(bufs.every(isZero)).toBe(true);
    expect(cache.size).toBe(0);
    expect(events.at(-1)).toEqual(['clear', 0]);
  });

  it('works without onEvent and with the real clock', () => {
    const cache = new DekCache({ maxEntries: 1, ttlMs: 60_000 });
    const a = key(1);
    cache.set('a', a);
    expect(cache.get('a')).toBe(a);
    cache.set('b', key(2));
    expect(isZero(a)).toBe(true);
  });
});
