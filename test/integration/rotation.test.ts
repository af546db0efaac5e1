/**
 * KEK rotation against real plugin processes (`node dist/cli/main.js serve`) on a local key file,
 * watched by the apiserver emulation (contract §4, §9 checks 29–31 and 33):
 *
 * - key_id goes A…A B…B with exactly one change while Status is polled every 100 ms, and every
 *   Encrypt carries the key_id of the Status just before it;
 * - objects written under A still read after the switch and after a restart;
 * - a restart without rotation keeps the key_id.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { randomBytes, randomUUID } from 'node:crypto';
import { ApiserverEmulator } from '../conformance/emulator.js';
import { SECRET, harness, rotateCli, sleep, statusKeyId, waitForKeyIdChange } from './rotation-support.js';

const h = harness('rot');
afterAll(() => h.cleanup());

describe('KEK rotation (local key file, real plugin processes)', () => {
  it('checks 29–31: one key_id change under 100 ms polling, Encrypt follows Status, old data stays readable', async () => {
    const keyFile = h.newKeyFile('kek-29.json');
    const plugin = await h.start(keyFile);
    const apiserver = new ApiserverEmulator(plugin.endpoint, { profile: 'p129' });
    try {
      const a = (await apiserver.probe()).keyId;
      const etcdKey = '/registry/secrets/default/before-rotation';
      const underA = apiserver.writeObject(etcdKey, SECRET);

      // Poll like a busy apiserver: every 100 ms a probe (Status, Encrypt on change, validated by
      // the emulator), plus a back-to-back Status → Encrypt pair whose key_ids must agree.
      const seen: string[] = [];
      const mismatches: Array<[string, string]> = [];
      let stopPolling = false;
      const poller = (async () => {
        while (!stopPolling) {
          const p = await apiserver.probe();
          seen.push(p.keyId);
          const s = await apiserver.client.status();
          const e = await apiserver.client.encrypt({ plaintext: randomBytes(32), uid: randomUUID() });
          seen.push(s.key_id);
          if (e.key_id !== s.key_id) mismatches.push([s.key_id, e.key_id]);
          await sleep(100);
        }
      })();
      await sleep(500);
      await rotateCli(keyFile);
      const b = await waitForKeyIdChange(plugin.endpoint, a);
      await sleep(1500); // keep polling after the switch: no flip back
      stopPolling = true;
      await poller;

      expect(b).not.toBe(a);
      // A…A B…B: exactly one change, no A after the first B, nothing else.
      const firstB = seen.indexOf(b);
      expect(firstB).toBeGreaterThan(0);
      expect(seen.slice(0, firstB).every((id) => id === a)).toBe(true);
      expect(seen.slice(firstB).every((id) => id === b)).toBe(true);
      // Check 30: zero mismatches, or only the single pair straddling the switch (A then B).
      expect(mismatches.length).toBeLessThanOrEqual(1);
      for (const [s, e] of mismatches) expect([s, e]).toEqual([a, b]);
      expect(apiserver.currentKeyId).toBe(b);

      // Check 31: data under A decrypts after the switch (cold cache → Decrypt).
      apiserver.dropCache();
      const read = await apiserver.readObject(etcdKey, underA);
      expect(read.plaintext).toEqual(SECRET);
      expect(read.stale).toBe(true); // written under A, current is B: the apiserver would migrate it
      expect(apiserver.decryptCalls).toBe(1);
      const underB = apiserver.writeObject('/registry/secrets/default/after-rotation', SECRET);
      expect(plugin.output()).toContain('switched key_id to a new KEK version');
      await h.stop(plugin);

      // ... and after a restart: same key_id B, both objects readable by a fresh apiserver.
      const restarted = await h.start(keyFile);
      const fresh = new ApiserverEmulator(restarted.endpoint, { profile: 'p129' });
      try {
        expect((await fresh.probe()).keyId).toBe(b);
        expect((await fresh.readObject(etcdKey, underA)).plaintext).toEqual(SECRET);
        expect(
          (await fresh.readObject('/registry/secrets/default/after-rotation', underB)).plaintext,
        ).toEqual(SECRET);
        expect(fresh.decryptCalls).toBe(2);
      } finally {
        fresh.close();
      }
      await h.stop(restarted);
    } finally {
      apiserver.close();
    }
  });

  it('check 33: a restart without rotation keeps the key_id (and a new key file gets a different one)', async () => {
    const keyFile = h.newKeyFile('kek-33.json');
    const first = await h.start(keyFile);
    const id = await statusKeyId(first.endpoint);
    await sleep(600); // several probes: no spurious rotation
    expect(await statusKeyId(first.endpoint)).toBe(id);
    await h.stop(first);
    const second = await h.start(keyFile);
    expect(await statusKeyId(second.endpoint)).toBe(id);
    await h.stop(second);
    const other = await h.start(h.newKeyFile('kek-33-other.json'));
    expect(await statusKeyId(other.endpoint)).not.toBe(id);
    await h.stop(other);
  });
});
