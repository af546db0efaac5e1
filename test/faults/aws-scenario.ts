/**
 * One fault scenario against the AWS KMS fake, run the same way for every fault:
 *
 *   before: prime; one DEK in the cache (written, then replaced by a DEK rotation) and the write
 *           DEK; "cold" ciphertexts made by another replica, whose DEK this plugin never saw.
 *   fault:  Status from memory (p99 < 20 ms) with the same key_id (or, for an unusable KEK, a
 *           fast gRPC error); cached and write-DEK Decrypts and new Encrypts work; a cold Decrypt
 *           with the apiserver's 3 s deadline ends in time and leaves no request pending at the
 *           fake; healthz turns to a reason after probe.healthGrace (where the fault makes probes fail).
 *   clear:  healthz "ok" (Status OK) within one probe interval (plus the probe in flight, plus the
 *           circuit breaker's remaining cooldown when the fault opened it); cold Decrypts work.
 *   always: no unhandled rejection or uncaught exception.
 */
import { randomUUID } from 'node:crypto';
import { expect } from '@jest/globals';
import { status as grpcStatus } from '@grpc/grpc-js';
import { DEFAULT_BREAKER } from '../../src/kek/remote.js';
import { timeoutSignal } from '../../src/deadline.js';
import type { FakeAwsKms } from '../fakes/aws-kms/index.js';
import {
  APISERVER_DEADLINE_MS,
  CrashWatch,
  PROBE,
  TempDir,
  encryptSeed,
  expectRoundTrip,
  expectStatusFromMemory,
  isServiceError,
  sampleStatus,
  serverDecryptDurations,
  sleep,
  startInProcess,
  timedDecrypt,
  until,
  type Running,
  type Sealed,
} from './support.js';

export interface AwsScenario {
  fake: FakeAwsKms;
  dir: TempDir;
  /** Starts the fault. */
  inject(keyId: string): void;
  /** Ends it. */
  clear(keyId: string): void;
  /** Probes fail during the fault, so healthz must turn to a reason after healthGrace. */
  degradesHealth: boolean;
  /** The KEK is unusable: Status must fail (writes stop). */
  stopsWrites?: boolean;
  /** gRPC codes a cold Decrypt may end with during the fault; include OK (0) if it may succeed. */
  coldCodes: number[];
  /** Extra checks while the fault is on. */
  during?(p: Running, keyId: string): Promise<void>;
}

export async function createColdCiphertexts(
  fake: FakeAwsKms,
  dir: TempDir,
  keyArn: string,
  n: number,
): Promise<Sealed[]> {
  const other = await startInProcess(dir, awsConfig(fake, keyArn));
  try {
    const out: Sealed[] = [];
    for (let i = 0; i < n; i += 1) out.push(await encryptSeed(other.client));
    return out;
  } finally {
    await other.close();
  }
}

export function awsConfig(fake: FakeAwsKms, keyArn: string): Record<string, unknown> {
  return { provider: 'aws', aws: { keyId: keyArn, region: fake.region, endpoint: fake.url } };
}

async function circuitOpen(p: Running): Promise<boolean> {
  const m = await p.plugin.metrics.registry.getSingleMetric('kms_plugin_remote_circuit_open')?.get();
  return (m?.values ?? []).some((v) => v.value === 1);
}

export async function runAwsScenario(s: AwsScenario): Promise<void> {
  const { fake, dir } = s;
  const key = fake.createKey();
  const cold = await createColdCiphertexts(fake, dir, key.arn, 2);
  const p = await startInProcess(dir, awsConfig(fake, key.arn));
  const crashes = new CrashWatch().start();
  try {
    const before = await p.client.status();
    expect(before.healthz).toBe('ok');
    const keyId = before.key_id;
    const cached = await encryptSeed(p.client);
    await p.plugin.envelope.rotateDek('manual', timeoutSignal(2000)); // `cached`'s DEK moves to the cache
    expect(p.plugin.envelope.cacheSize).toBe(1);
    const written = await encryptSeed(p.client);
    expect(written.enc.key_id).toBe(keyId);

    s.inject(key.arn);
    const faultStart = Date.now();

    // Status from memory, at once and throughout.
    const early = await sampleStatus(p.client, 200);
    if (s.stopsWrites) {
      expect(early.p99).toBeLessThan(20);
    } else {
      expectStatusFromMemory(early, keyId);
    }

    // Cached and write-DEK Decrypts, new Encrypts.
    await expectRoundTrip(p.client, cached);
    await expectRoundTrip(p.client, written);
    const fresh = await encryptSeed(p.client);
    expect(fresh.enc.key_id).toBe(keyId);
    await expectRoundTrip(p.client, fresh);

    // A Decrypt that needs the KMS ends within the apiserver's deadline and leaves nothing behind.
    const remoteBefore = fake.log.filter((r) => r.op === 'Decrypt').length;
    const t = await timedDecrypt(p.client, cold[0], APISERVER_DEADLINE_MS);
    const code = t.error ? t.error.code : grpcStatus.OK;
    if (!s.coldCodes.includes(code)) {
      throw new Error(`cold Decrypt ended with ${code} ${t.error?.details ?? 'OK'}; expected one of ${s.coldCodes.join(', ')}`);
    }
    if (code === grpcStatus.OK) expect(t.plaintext?.equals(cold[0].seed)).toBe(true);
    expect(t.ms).toBeLessThan(APISERVER_DEADLINE_MS + 150);
    await until('the plugin to finish the call', async () => (p.plugin.server.inFlightCalls === 0 ? true : undefined), 500);
    const server = serverDecryptDurations(p.log).at(-1);
    expect(server).toBeDefined();
    expect(server?.ms ?? Infinity).toBeLessThan(APISERVER_DEADLINE_MS + 100);
    await until('no request pending at the fake', async () => (fake.pendingRequests() === 0 ? true : undefined), 500);
    const attempts = fake.log.filter((r) => r.op === 'Decrypt').length - remoteBefore;
    expect(attempts).toBeLessThanOrEqual(4); // aws.maxAttempts (default 4)

    if (s.stopsWrites) {
      const refused = await until('Status to fail', async () => {
        const a = await p.client.status(1000).catch((e: unknown) => e);
        return isServiceError(a) ? a : undefined;
      });
      expect(refused.code).toBe(grpcStatus.FAILED_PRECONDITION);
      const sample = await sampleStatus(p.client, 200);
      expect(sample.p99).toBeLessThan(20);
      expect(sample.answers.every((a) => isServiceError(a) && a.code === grpcStatus.FAILED_PRECONDITION)).toBe(true);
    } else if (s.degradesHealth) {
      const reason = await until(
        'healthz to report the fault',
        async () => {
          const st = await p.client.status(1000);
          expect(st.key_id).toBe(keyId); // Status keeps succeeding with the same key_id
          return st.healthz !== 'ok' ? st.healthz : undefined;
        },
        PROBE.healthGraceMs + 2 * (PROBE.timeoutMs + PROBE.intervalMs) + 1000,
      );
      expect(reason.length).toBeGreaterThan(0);
      expect(Date.now() - faultStart).toBeGreaterThanOrEqual(PROBE.healthGraceMs);
      expectStatusFromMemory(await sampleStatus(p.client, 200), keyId);
    } else {
      // Probes still get through (e.g. retried throttling): healthz stays ok.
      await sleep(PROBE.healthGraceMs + PROBE.intervalMs);
      const st = await p.client.status();
      expect(st).toMatchObject({ healthz: 'ok', key_id: keyId });
    }
    await s.during?.(p, key.arn);
    // Still serving after everything above.
    await expectRoundTrip(p.client, cached);

    const breakerOpen = await circuitOpen(p);
    s.clear(key.arn);
    const t0 = performance.now();
    const back = await until(
      'Status ok and healthz ok',
      async () => {
        const st = await p.client.status(1000);
        return st.healthz === 'ok' ? st : undefined;
      },
      15_000,
    );
    const recoveryMs = performance.now() - t0;
    // One probe interval, plus the probe that may be in flight (bounded by probe.timeout), plus,
    // if the fault opened the circuit breaker, what is left of its cooldown.
    const bound = PROBE.intervalMs + PROBE.timeoutMs + 300 + (breakerOpen ? DEFAULT_BREAKER.cooldownMs : 0);
    expect(recoveryMs).toBeLessThan(bound);
    expect(back.key_id).toBe(keyId);
    await expectRoundTrip(p.client, cold[1]);
    await expectRoundTrip(p.client, fresh);
    expect(fake.pendingRequests()).toBe(0);
    expect(crashes.errors).toEqual([]);
  } finally {
    crashes.stop();
    await p.close();
    fake.reset();
    fake.latencyMs = 0;
  }
}

export const uid = (): string => randomUUID();
