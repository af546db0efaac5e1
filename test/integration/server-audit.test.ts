/**
 * The per-RPC audit line survives the cheaper access log: every Encrypt and Decrypt (ok or not)
 * gets one `rpc` line with method, uid, key_id, outcome, code and duration; Status only at debug;
 * no plaintext, ciphertext or annotation bytes ever appear.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { InvalidInputError } from '../../src/errors.js';
import { createLogger } from '../../src/observability/logger.js';
import { KmsClient } from '../../src/server/client.js';
import { KmsServer, type EnvelopeOps } from '../../src/server/server.js';
import { tempDir } from '../support/plugin-process.js';

class Capture {
  text = '';
  write(s: string): void {
    this.text += s;
  }
  lines(): Array<Record<string, unknown>> {
    return this.text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}

const KEY_ID = 'test-key-1';
const SECRET_ANNOTATION = randomBytes(24);

/** XOR "encryption" is enough here: the test is about what the server logs. */
const envelope: EnvelopeOps = {
  encrypt: (plaintext) => ({
    ciphertext: Buffer.from(Buffer.from(plaintext).map((b) => b ^ 0x5a)),
    keyId: KEY_ID,
    annotations: { 'test.example/a': Buffer.from(SECRET_ANNOTATION) },
  }),
  decrypt: async (ciphertext, keyId) => {
    if (keyId !== KEY_ID) throw new InvalidInputError('unknown key_id for this test');
    return Buffer.from(Buffer.from(ciphertext).map((b) => b ^ 0x5a));
  },
};

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function start(
  level: 'info' | 'debug',
): Promise<{ out: Capture; client: KmsClient; server: KmsServer }> {
  const d = tempDir('kkp-audit-');
  const out = new Capture();
  const endpoint = `unix://${join(d.path, 'kms.sock')}`;
  const server = new KmsServer({
    listen: endpoint,
    socketMode: 0o600,
    maxPlaintextBytes: 995,
    status: { status: () => ({ ok: true, version: 'v2', healthz: 'ok', keyId: KEY_ID }) },
    envelope,
    logger: createLogger({ level, destination: out }),
  });
  await server.start();
  const client = new KmsClient(endpoint);
  cleanups.push(async () => {
    client.close();
    await server.stop(2000);
    d.cleanup();
  });
  return { out, client, server };
}

describe('per-RPC audit line', () => {
  it('one line per Encrypt and Decrypt, ok or failed, and none for Status at info', async () => {
    const { out, client, server } = await start('info');
    const seed = randomBytes(32);
    const uids = [randomUUID(), randomUUID(), randomUUID()];
    const e = await client.encrypt({ plaintext: seed, uid: uids[0] });
    const d = await client.decrypt({
      ciphertext: e.ciphertext,
      key_id: e.key_id,
      annotations: e.annotations,
      uid: uids[1],
    });
    expect(d.plaintext).toEqual(seed);
    await expect(
      client.decrypt({ ciphertext: e.ciphertext, key_id: 'other', annotations: e.annotations, uid: uids[2] }),
    ).rejects.toMatchObject({ code: 3 });
    await client.status();
    await server.stop(2000); // flushes the access log
    const rpc = out.lines().filter((l) => l.msg === 'rpc');
    expect(rpc.map((l) => [l.level, l.method, l.uid, l.keyId, l.outcome, l.code])).toEqual([
      ['info', 'encrypt', uids[0], KEY_ID, 'ok', 'OK'],
      ['info', 'decrypt', uids[1], KEY_ID, 'ok', 'OK'],
      ['warn', 'decrypt', uids[2], 'other', 'invalid_input', 'InvalidArgument'],
    ]);
    for (const l of rpc) {
      expect(typeof l.durationMs).toBe('number');
      expect(typeof l.time).toBe('string');
    }
    expect(rpc[2].error).toBe('unknown key_id for this test');
    for (const secret of [seed, e.ciphertext, SECRET_ANNOTATION]) {
      for (const enc of ['hex', 'base64', 'latin1'] as const)
        expect(out.text).not.toContain(secret.toString(enc));
    }
  });

  it('Status is logged at debug', async () => {
    const { out, client, server } = await start('debug');
    await client.status();
    await server.stop(2000);
    const rpc = out.lines().filter((l) => l.msg === 'rpc');
    expect(rpc).toEqual([
      expect.objectContaining({ level: 'debug', method: 'status', keyId: KEY_ID, code: 'OK' }),
    ]);
    expect(rpc[0]).not.toHaveProperty('uid');
  });
});
