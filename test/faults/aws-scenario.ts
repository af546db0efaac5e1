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
import { afterAll, beforeAll, expect } from '@jest/globals';
import { status as grpcStatus } from '@grpc/grpc-js';
import { DEFAULT_BREAKER } from '../../src/kek/remote.js';
import { codeName } from '../../src/server/errors.js';
import { timeoutSignal } from '../../src/deadline.js';
import { FakeAwsKms } from '../fakes/aws-kms/index.js';
import {
  STATIC_AWS_ENV,
  TEST_ACCESS_KEY_ID,
  TEST_SECRET_ACCESS_KEY,
  setEnv,
} from '../fakes/aws-kms/harness.js';
import {
  APISERVER_DEADLINE_MS,
  CrashWatch,
  coldCiphertexts,
  PROBE,
  TempDir,
  encryptSeed,
  expectRoundTrip,
  expectStatusFromMemory,
  isServiceError,
  expectFastStatus,
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
  clear(keyId: string): void | Promise<void>;
  /** Probes fail during the fault, so healthz must turn to a reason after healthGrace. */
  degradesHealth: boolean;
  /**
   * The KMS answers slowly or not at all (latency, hang): when the fault clears, a probe may still
   * be waiting, for at most probe.timeout. Otherwise probes fail fast.
   */
  probesHang?: boolean;
  /** The KEK is unusable: Status must fail (writes stop). */
  stopsWrites?: boolean;
  /** gRPC codes a cold Decrypt may end with during the fault; include OK (0) if it may succeed. */
  coldCodes: number[];
  /** Extra checks while the fault is on. */
  during?(p: Running, keyId: string, spare: Sealed): Promise<void>;
}

export function awsConfig(fake: FakeAwsKms, keyArn: string): Record<string, unknown> {
  return { provider: 'aws', aws: { keyId: keyArn, region: fake.region, endpoint: fake.url } };
}

export async function circuitOpen(p: Running): Promise<boolean> {
  const m = await p.plugin.metrics.registry.getSingleMetric('kms_plugin_remote_circuit_open')?.get();
  return (m?.values ?? []).some((v) => v.value === 1);
}

export async function runAwsScenario(s: AwsScenario): Promise<void> {
  const { fake, dir } = s;
  const key = fake.createKey();
  const cold = await coldCiphertexts(dir, awsConfig(fake, key.arn), 3);
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
    if (s.stopsWrites)
      await expectFastStatus(p.client, () => undefined); // OK or the new refusal
    else await expectStatusFromMemory(p.client, keyId);

    // Cached and write-DEK Decrypts, new Encrypts.
    await expectRoundTrip(p.client, cached);
    await expectRoundTrip(p.client, written);
    // With an unusable KEK, an Encrypt may still pass until the next probe notices, then it is
    // refused FAILED_PRECONDITION (issue 12.3); otherwise it goes on under the same key_id.
    const fresh = s.stopsWrites
      ? await encryptSeed(p.client).catch((e: unknown) => {
          expect(isServiceError(e) && e.code).toBe(grpcStatus.FAILED_PRECONDITION);
          return undefined;
        })
      : await encryptSeed(p.client);
    if (fresh) {
      expect(fresh.enc.key_id).toBe(keyId);
      if (fresh) await expectRoundTrip(p.client, fresh);
    }

    // A Decrypt that needs the KMS ends within the apiserver's deadline and leaves nothing behind.
    const remoteBefore = fake.log.filter((r) => r.op === 'Decrypt').length;
    const t = await timedDecrypt(p.client, cold[0], APISERVER_DEADLINE_MS);
    const code = t.error ? t.error.code : grpcStatus.OK;
    if (!s.coldCodes.includes(code)) {
      throw new Error(
        `cold Decrypt ended with ${code} ${t.error?.details ?? 'OK'}; expected one of ${s.coldCodes.join(', ')}`,
      );
    }
    if (code === grpcStatus.OK) expect(t.plaintext?.equals(cold[0].seed)).toBe(true);
    // The plugin answers (with its own error) before the apiserver's deadline: the caller never
    // has to time out, and the server's log line for the call is not a cancellation.
    expect(t.ms).toBeLessThan(APISERVER_DEADLINE_MS);
    expect(t.error?.details ?? '').not.toMatch(/^Deadline exceeded after/);
    await until(
      'the plugin to finish the call',
      async () => (p.plugin.server.inFlightCalls === 0 ? true : undefined),
      500,
    );
    p.plugin.server.flushAccessLog(); // access lines are batched (written within 50 ms)
    const server = serverDecryptDurations(p.log).at(-1);
    expect(server?.code).toBe(t.error ? codeName(t.error.code) : 'OK');
    expect(server?.ms ?? Infinity).toBeLessThan(APISERVER_DEADLINE_MS);
    // The fake saw every Decrypt attempt end (answered, or abandoned by the plugin), and no
    // request at all outlives the longest deadline the plugin uses (aws.attemptTimeout, 2 s).
    await until(
      'no Decrypt pending at the fake',
      async () => (fake.log.some((r) => r.op === 'Decrypt' && r.pending) ? undefined : true),
      500,
    );
    expect(fake.log.filter((r) => r.pending && Date.now() - r.at > 2200)).toEqual([]);
    const attempts = fake.log.filter((r) => r.op === 'Decrypt').length - remoteBefore;
    expect(attempts).toBeLessThanOrEqual(4); // aws.maxAttempts (default 4)

    if (s.stopsWrites) {
      const refused = await until('Status to fail', async () => {
        const a = await p.client.status(1000).catch((e: unknown) => e);
        return isServiceError(a) ? a : undefined;
      });
      expect(refused.code).toBe(grpcStatus.FAILED_PRECONDITION);
      await expectFastStatus(p.client, (a) => {
        expect(isServiceError(a) && a.code).toBe(grpcStatus.FAILED_PRECONDITION);
      });
      // Encrypt is refused too: no new seed under a DEK whose KEK is known to be unusable (12.3).
      const enc = await encryptSeed(p.client).catch((e: unknown) => e);
      expect(isServiceError(enc) && enc.code).toBe(grpcStatus.FAILED_PRECONDITION);
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
      // Not before the grace period (counted from the last good probe, at most one interval
      // before the fault started).
      expect(Date.now() - faultStart).toBeGreaterThanOrEqual(PROBE.healthGraceMs - PROBE.intervalMs);
      await expectStatusFromMemory(p.client, keyId);
    } else {
      // Probes still get through (e.g. retried throttling): healthz stays ok.
      await sleep(PROBE.healthGraceMs + PROBE.intervalMs);
      const st = await p.client.status();
      expect(st).toMatchObject({ healthz: 'ok', key_id: keyId });
    }
    await s.during?.(p, key.arn, cold[2]);
    // Still serving after everything above: cached DEKs decrypt; and unless the KEK is unusable
    // (Status refuses, so the apiserver stops writing), Encrypts go on under the same key_id.
    await expectRoundTrip(p.client, cached);
    await expectRoundTrip(p.client, written);
    if (!s.stopsWrites) {
      const late = await encryptSeed(p.client);
      expect(late.enc.key_id).toBe(keyId);
      await expectRoundTrip(p.client, late);
    }

    const breakerOpen = await circuitOpen(p);
    await s.clear(key.arn);
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
    // One probe interval (+ 300 ms for the machine), plus the probe that may still be waiting for
    // a slow or silent KMS (bounded by probe.timeout), plus, if the fault opened the circuit
    // breaker, what is left of its cooldown.
    const bound =
      PROBE.intervalMs +
      300 +
      (s.probesHang ? PROBE.timeoutMs : 0) +
      (breakerOpen ? DEFAULT_BREAKER.cooldownMs : 0);
    expect(recoveryMs).toBeLessThan(bound);
    expect(back.key_id).toBe(keyId);
    await expectRoundTrip(p.client, cold[1]);
    if (fresh) await expectRoundTrip(p.client, fresh);
    expect(fake.pendingRequests()).toBe(0);
    expect(crashes.errors).toEqual([]);
  } finally {
    crashes.stop();
    await p.close();
    fake.reset();
    fake.latencyMs = 0;
  }
}

/**
 * The AWS fake for one test file: started with the harness credentials (and the env that makes
 * the SDK use them) before the tests, closed after. Read `fake` and `dir` inside tests.
 */
export function useAwsFake(): { readonly fake: FakeAwsKms; readonly dir: TempDir } {
  const ctx = {} as { fake: FakeAwsKms; dir: TempDir };
  let restoreEnv: () => void = () => undefined;
  beforeAll(async () => {
    restoreEnv = setEnv(STATIC_AWS_ENV);
    ctx.dir = new TempDir();
    ctx.fake = new FakeAwsKms();
    ctx.fake.addCredentials(TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY);
    await ctx.fake.listen();
  });
  afterAll(async () => {
    await ctx.fake.close();
    ctx.dir.remove();
    restoreEnv();
  });
  return ctx;
}
