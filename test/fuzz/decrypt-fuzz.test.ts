/**
 * Property-based fuzzing over the real socket: ≥ 100,000 mutated Decrypt requests (ciphertext,
 * key_id, annotations, alone and combined, including pieces swapped between valid requests),
 * malformed Encrypt requests, raw garbage protobuf bodies, oversized messages and raw non-HTTP/2
 * bytes. Invariants: zero wrong plaintexts, zero crashes, every failure a gRPC error with a
 * sensible code, and the plugin healthy with the same key_id afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Client, credentials, Metadata, status } from '@grpc/grpc-js';
import fc from 'fast-check';
import { randomBytes, randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { join } from 'node:path';
import { startPlugin, type PluginHandle } from '../../src/app/plugin.js';
import { keygen } from '../../src/cli/keygen.js';
import { loadConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/observability/logger.js';
import { KmsClient } from '../../src/server/client.js';
import { METHODS } from '../../src/server/proto.js';
import { tempDir } from '../support/plugin-process.js';

interface Valid {
  seed: Buffer;
  ciphertext: Buffer;
  key_id: string;
  annotations: Record<string, Buffer>;
}

const dir = tempDir('kkp-fuzz-');
const sock = join(dir.path, 'kms.sock');
let plugin: PluginHandle;
let client: KmsClient;
const valid: Valid[] = [];
const codes = new Map<string, number>();
let requests = 0;

/** Codes a well-behaved plugin may answer a bad Decrypt with. */
const ACCEPTABLE = new Set([status.INVALID_ARGUMENT, status.NOT_FOUND, status.FAILED_PRECONDITION]);

beforeAll(async () => {
  const keyFile = join(dir.path, 'kek.json');
  keygen(keyFile);
  const config = loadConfig({
    defaults: {
      listen: `unix://${sock}`,
      provider: 'local',
      local: { keyFile },
      healthAddr: '',
      logLevel: 'silent',
      dek: { maxUses: 3 },
    },
  });
  plugin = await startPlugin(config, { logger: silentLogger(), waitForPrimeMs: 5000 });
  client = new KmsClient(`unix://${sock}`);
  // Several DEKs (maxUses 3 forces rotations) so swaps across DEKs are exercised too.
  for (let i = 0; i < 12; i++) {
    const seed = randomBytes(32);
    const e = await client.encrypt({ plaintext: seed, uid: randomUUID() });
    valid.push({ seed, ciphertext: Buffer.from(e.ciphertext), key_id: e.key_id, annotations: e.annotations });
    await new Promise((r) => setTimeout(r, 20)); // let the background DEK rotation land
  }
});

afterAll(async () => {
  client?.close();
  await plugin?.close();
  dir.cleanup();
  const summary = [...codes.entries()].map(([k, v]) => `${k}=${v}`).join(' ');
  process.stdout.write(`fuzz: ${requests} requests; outcomes: ${summary}\n`);
});

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; by: number }
  | { kind: 'extend'; bytes: Uint8Array }
  | { kind: 'random-ct'; bytes: Uint8Array }
  | { kind: 'swap-ct'; from: number }
  | { kind: 'key-id'; value: string }
  | { kind: 'key-id-char'; at: number; ch: string }
  | { kind: 'swap-key-id'; from: number }
  | { kind: 'drop-annotation'; which: number }
  | { kind: 'add-annotation'; key: string; value: Uint8Array }
  | { kind: 'annotation-flip'; which: number; at: number; bit: number }
  | { kind: 'annotation-value'; which: number; value: Uint8Array }
  | { kind: 'swap-annotation'; which: number; from: number }
  | { kind: 'swap-annotations'; from: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(2000), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), by: fc.integer({ min: 1, max: 80 }) }),
  fc.record({ kind: fc.constant('extend' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }) }),
  fc.record({
    kind: fc.constant('random-ct' as const),
    bytes: fc.uint8Array({ minLength: 0, maxLength: 1100 }),
  }),
  fc.record({ kind: fc.constant('swap-ct' as const), from: fc.nat(11) }),
  fc.record({
    kind: fc.constant('key-id' as const),
    value: fc.oneof(fc.string({ maxLength: 60 }), fc.constant(''), fc.constant('x'.repeat(1025))),
  }),
  fc.record({
    kind: fc.constant('key-id-char' as const),
    at: fc.nat(60),
    ch: fc.string({ minLength: 1, maxLength: 1 }),
  }),
  fc.record({ kind: fc.constant('swap-key-id' as const), from: fc.nat(11) }),
  fc.record({ kind: fc.constant('drop-annotation' as const), which: fc.nat(1) }),
  fc.record({
    kind: fc.constant('add-annotation' as const),
    key: fc.oneof(fc.domain(), fc.string({ maxLength: 30 })),
    value: fc.uint8Array({ maxLength: 50 }),
  }),
  fc.record({
    kind: fc.constant('annotation-flip' as const),
    which: fc.nat(1),
    at: fc.nat(300),
    bit: fc.integer({ min: 0, max: 7 }),
  }),
  fc.record({
    kind: fc.constant('annotation-value' as const),
    which: fc.nat(1),
    value: fc.uint8Array({ maxLength: 300 }),
  }),
  fc.record({ kind: fc.constant('swap-annotation' as const), which: fc.nat(1), from: fc.nat(11) }),
  fc.record({ kind: fc.constant('swap-annotations' as const), from: fc.nat(11) }),
);

function apply(
  base: Valid,
  muts: Mutation[],
): { ciphertext: Buffer; key_id: string; annotations: Record<string, Buffer> } {
  let ciphertext = Buffer.from(base.ciphertext);
  let key_id = base.key_id;
  let annotations: Record<string, Buffer> = { ...base.annotations };
  const keys = (): string[] => Object.keys(annotations).sort();
  for (const m of muts) {
    switch (m.kind) {
      case 'flip':
        if (ciphertext.length) ciphertext[m.at % ciphertext.length] ^= 1 << m.bit;
        break;
      case 'truncate':
        ciphertext = ciphertext.subarray(0, Math.max(0, ciphertext.length - m.by));
        break;
      case 'extend':
        ciphertext = Buffer.concat([ciphertext, Buffer.from(m.bytes)]);
        break;
      case 'random-ct':
        ciphertext = Buffer.from(m.bytes);
        break;
      case 'swap-ct':
        ciphertext = Buffer.from(valid[m.from].ciphertext);
        break;
      case 'key-id':
        key_id = m.value;
        break;
      case 'key-id-char':
        if (key_id.length)
          key_id = key_id.slice(0, m.at % key_id.length) + m.ch + key_id.slice((m.at % key_id.length) + 1);
        break;
      case 'swap-key-id':
        key_id = valid[m.from].key_id;
        break;
      case 'drop-annotation': {
        const k = keys()[m.which % Math.max(1, keys().length)];
        if (k) delete annotations[k];
        break;
      }
      case 'add-annotation':
        annotations[m.key] = Buffer.from(m.value);
        break;
      case 'annotation-flip': {
        const k = keys()[m.which % Math.max(1, keys().length)];
        if (k && annotations[k].length) {
          const v = Buffer.from(annotations[k]);
          v[m.at % v.length] ^= 1 << m.bit;
          annotations[k] = v;
        }
        break;
      }
      case 'annotation-value': {
        const k = keys()[m.which % Math.max(1, keys().length)];
        if (k) annotations[k] = Buffer.from(m.value);
        break;
      }
      case 'swap-annotation': {
        const k = keys()[m.which % Math.max(1, keys().length)];
        if (k && valid[m.from].annotations[k]) annotations[k] = valid[m.from].annotations[k];
        break;
      }
      case 'swap-annotations':
        annotations = { ...valid[m.from].annotations };
        break;
    }
  }
  return { ciphertext, key_id, annotations };
}

/** The seed a request legitimately decrypts to, if it is byte-for-byte one of the valid requests. */
function legitimateSeed(req: {
  ciphertext: Buffer;
  key_id: string;
  annotations: Record<string, Buffer>;
}): Buffer | undefined {
  for (const v of valid) {
    if (!v.ciphertext.equals(req.ciphertext) || v.key_id !== req.key_id) continue;
    const a = Object.keys(req.annotations).sort();
    const b = Object.keys(v.annotations).sort();
    if (
      a.length === b.length &&
      a.every((k, i) => k === b[i] && Buffer.from(req.annotations[k]).equals(v.annotations[k]))
    )
      return v.seed;
  }
  return undefined;
}

function count(label: string): void {
  codes.set(label, (codes.get(label) ?? 0) + 1);
}

describe('fuzzing the KMS v2 socket', () => {
  it('≥ 100,000 mutated Decrypts: never a wrong plaintext, every failure a sensible gRPC error', async () => {
    const BATCH = 25;
    const RUNS = 4000; // × 25 = 100,000 requests
    let wrong = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat(11), fc.array(mutation, { minLength: 1, maxLength: 3 })), {
          minLength: BATCH,
          maxLength: BATCH,
        }),
        async (batch) => {
          await Promise.all(
            batch.map(async ([i, muts]) => {
              const req = apply(valid[i], muts);
              const expected = legitimateSeed(req);
              requests += 1;
              try {
                const res = await client.decrypt({ ...req, uid: randomUUID() }, 10_000);
                const got = Buffer.from(res.plaintext);
                if (!expected || !got.equals(expected)) {
                  wrong += 1;
                  throw new Error(`wrong plaintext for mutations ${JSON.stringify(muts).slice(0, 300)}`);
                }
                count('OK(unchanged request)');
              } catch (err) {
                const code = (err as { code?: number }).code;
                if (typeof code !== 'number') throw err;
                count(status[code]);
                if (!ACCEPTABLE.has(code))
                  throw new Error(
                    `unexpected code ${status[code]} for ${JSON.stringify(muts).slice(0, 300)}`,
                  );
              }
            }),
          );
        },
      ),
      { numRuns: RUNS },
    );
    expect(wrong).toBe(0);
    expect(requests).toBeGreaterThanOrEqual(100_000);
    const s = await client.status();
    expect(s.healthz).toBe('ok');
  }, 240_000);

  it('malformed Encrypt requests: round-trip or INVALID_ARGUMENT, nothing else', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 0, maxLength: 2000 }),
        fc.string({ maxLength: 400 }),
        async (pt, uid) => {
          requests += 1;
          try {
            const e = await client.encrypt({ plaintext: Buffer.from(pt), uid }, 10_000);
            expect(pt.length).toBeGreaterThan(0);
            expect(pt.length).toBeLessThanOrEqual(963);
            expect(e.ciphertext.length).toBeLessThanOrEqual(1024);
            const d = await client.decrypt({
              ciphertext: e.ciphertext,
              key_id: e.key_id,
              annotations: e.annotations,
            });
            expect(Buffer.from(d.plaintext)).toEqual(Buffer.from(pt));
            count('OK(encrypt)');
          } catch (err) {
            const code = (err as { code?: number }).code;
            if (typeof code !== 'number') throw err;
            expect(code).toBe(status.INVALID_ARGUMENT);
            count(`${status[code]}(encrypt)`);
          }
        },
      ),
      { numRuns: 3000 },
    );
  }, 120_000);

  it('garbage protobuf bodies, oversized messages and unknown methods get gRPC errors; the plugin survives', async () => {
    const raw = new Client(`unix://${sock}`, credentials.createInsecure());
    const send = (method: string, body: Buffer): Promise<number> =>
      new Promise((resolve) => {
        raw.makeUnaryRequest(
          method,
          (b: Buffer) => b,
          (b: Buffer) => b,
          body,
          new Metadata(),
          { deadline: Date.now() + 5000 },
          (err) => resolve(err ? err.code : 0),
        );
      });
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(METHODS.status, METHODS.encrypt, METHODS.decrypt),
          fc.uint8Array({ maxLength: 3000 }),
          async (m, body) => {
            requests += 1;
            const code = await send(m, Buffer.from(body));
            count(`raw:${status[code]}`);
            // Garbage that happens to parse is handled like any request; otherwise a deserialization error.
            expect([
              status.OK,
              status.INVALID_ARGUMENT,
              status.INTERNAL,
              status.NOT_FOUND,
              status.FAILED_PRECONDITION,
            ]).toContain(code);
          },
        ),
        { numRuns: 3000 },
      );
      expect(await send(METHODS.decrypt, randomBytes(200 * 1024))).toBe(status.RESOURCE_EXHAUSTED);
      expect(await send('/v2.KeyManagementService/Nope', Buffer.alloc(0))).toBe(status.UNIMPLEMENTED);
    } finally {
      raw.close();
    }
    // Raw bytes that are not HTTP/2 at all: the connection is dropped, the server lives on.
    for (let i = 0; i < 50; i++) {
      await new Promise<void>((resolve) => {
        const s = connect({ path: sock });
        s.resume(); // read (and drop) the server's GOAWAY so 'close' can fire
        s.on('error', () => resolve());
        s.on('close', () => resolve());
        s.on('connect', () => {
          s.write(randomBytes(1 + ((i * 97) % 4000)));
          s.end();
        });
      });
    }
    const st = await client.status();
    expect(st.healthz).toBe('ok');
    expect(st.key_id).toBe(valid[0].key_id);
  }, 120_000);
});
