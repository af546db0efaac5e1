/**
 * Replicas (contract §4 "make all replicas converge", §9 check 12): two plugin processes on one
 * key file converge on the same key_id after a rotation and read each other's data.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { rotateKeyFile } from '../../src/cli/rotate.js';
import { ApiserverEmulator } from '../conformance/emulator.js';
import { SECRET, harness, statusKeyId, waitForKeyIdChange } from './rotation-support.js';

const h = harness('rep');
afterAll(() => h.cleanup());

describe('KEK rotation (local key file, real plugin processes)', () => {
  it('check 12: two plugin processes on the same key file converge on the same key_id after a rotation', async () => {
    const keyFile = h.newKeyFile('kek-12.json');
    const [p1, p2] = await Promise.all([h.start(keyFile), h.start(keyFile)]);
    const a = await statusKeyId(p1.endpoint);
    expect(await statusKeyId(p2.endpoint)).toBe(a);
    rotateKeyFile(keyFile);
    const [b1, b2] = await Promise.all([
      waitForKeyIdChange(p1.endpoint, a),
      waitForKeyIdChange(p2.endpoint, a),
    ]);
    expect(b1).toBe(b2);
    expect(b1).not.toBe(a);

    // Each replica decrypts what the other encrypted after the switch.
    const e1 = new ApiserverEmulator(p1.endpoint, { profile: 'p129' });
    const e2 = new ApiserverEmulator(p2.endpoint, { profile: 'p129' });
    try {
      expect((await e1.probe()).keyId).toBe(b1);
      const v = e1.writeObject('/registry/secrets/ns/shared', SECRET);
      expect((await e2.readObject('/registry/secrets/ns/shared', v)).plaintext).toEqual(SECRET);
    } finally {
      e1.close();
      e2.close();
    }
    await Promise.all([h.stop(p1), h.stop(p2)]);
  });
});
