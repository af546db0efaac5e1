/** Driving a plugin from this process: timed Encrypt/Decrypt with a small worker pool. */
import { status as grpcStatus } from '@grpc/grpc-js';
import { randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { KmsClient } from '../../src/server/client.js';

export interface Sealed {
  seed: Buffer;
  ciphertext: Buffer;
  keyId: string;
  annotations: Record<string, Buffer>;
}

export function client(socket: string): KmsClient {
  return new KmsClient(`unix://${socket}`);
}

export async function encryptSeed(c: KmsClient, timeoutMs = 10_000): Promise<Sealed> {
  const seed = randomBytes(32);
  const r = await c.encrypt({ plaintext: seed, uid: randomUUID() }, timeoutMs);
  return { seed, ciphertext: r.ciphertext, keyId: r.key_id, annotations: r.annotations ?? {} };
}

/** Decrypts and checks the seed; resolves with the latency in µs. */
export async function decryptCheck(c: KmsClient, s: Sealed, timeoutMs = 10_000): Promise<number> {
  const t = performance.now();
  const r = await c.decrypt(
    { ciphertext: s.ciphertext, key_id: s.keyId, annotations: s.annotations, uid: randomUUID() },
    timeoutMs,
  );
  const us = (performance.now() - t) * 1000;
  if (!Buffer.from(r.plaintext).equals(s.seed)) throw new Error('WrongPlaintext');
  return us;
}

/** Runs `task(i)` for i in [0, n) with `concurrency` workers; collects results in order. */
export async function pool<T>(n: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(n);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      out[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return out;
}

/** gRPC status code name of an error from KmsClient, or its message. */
export function errorCode(err: unknown): string {
  const code = (err as { code?: number }).code;
  if (typeof code === 'number' && grpcStatus[code] !== undefined) return grpcStatus[code];
  return err instanceof Error ? err.message.slice(0, 40) : 'error';
}
