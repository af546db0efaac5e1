/**
 * Network faults between the plugin and AWS KMS (the wire-level fake): 2 s of latency on every
 * answer (with retries, more than the apiserver's 3 s deadline) and an outage in which the KMS
 * accepts connections and never answers, both started and ended by the test. See ./aws-scenario.ts
 * for what is asserted.
 */
import { expect, test } from '@jest/globals';
import { status as grpcStatus } from '@grpc/grpc-js';
import { circuitOpen, runAwsScenario, useAwsFake } from './aws-scenario.js';
import { APISERVER_DEADLINE_MS, timedDecrypt, until } from './support.js';

const ctx = useAwsFake();

test('2 s latency on every KMS answer', async () => {
  await runAwsScenario({
    fake: ctx.fake,
    dir: ctx.dir,
    inject: () => {
      ctx.fake.latencyMs = 2000;
    },
    clear: () => {
      ctx.fake.latencyMs = 0;
    },
    degradesHealth: true, // probes (timeout 1 s) cannot finish
    probesHang: true,
    // aws.attemptTimeout is 2 s: the first attempt may just make it, otherwise the deadline ends it.
    coldCodes: [grpcStatus.OK, grpcStatus.DEADLINE_EXCEEDED, grpcStatus.UNAVAILABLE],
  });
}, 40_000);

test('outage: the KMS accepts connections and never answers, then comes back', async () => {
  await runAwsScenario({
    fake: ctx.fake,
    dir: ctx.dir,
    inject: () => {
      ctx.fake.faultRule = () => ({ hang: true });
    },
    clear: () => {
      ctx.fake.faultRule = undefined;
    },
    degradesHealth: true,
    probesHang: true,
    coldCodes: [grpcStatus.DEADLINE_EXCEEDED, grpcStatus.UNAVAILABLE],
  });
}, 40_000);

test('outage: the KMS endpoint goes away (connection refused) long enough to open the circuit breaker, then comes back', async () => {
  const port = Number(new URL(ctx.fake.url).port);
  await runAwsScenario({
    fake: ctx.fake,
    dir: ctx.dir,
    inject: () => {
      void ctx.fake.close();
    },
    clear: () => ctx.fake.listen(port).then(() => undefined),
    degradesHealth: true,
    // Refused connections fail fast: retried inside the deadline, then UNAVAILABLE (or, once the
    // breaker is open, UNAVAILABLE at once).
    coldCodes: [grpcStatus.UNAVAILABLE, grpcStatus.DEADLINE_EXCEEDED],
    during: async (p, _key, spare) => {
      // Enough failed probes open the breaker: a Decrypt that needs the KMS now fails at once.
      await until(
        'the circuit breaker to open',
        async () => ((await circuitOpen(p)) ? true : undefined),
        15_000,
      );
      const t = await timedDecrypt(p.client, spare, APISERVER_DEADLINE_MS);
      expect(t.error?.code).toBe(grpcStatus.UNAVAILABLE);
      expect(t.error?.details).toMatch(/circuit/);
      expect(t.ms).toBeLessThan(200);
    },
  });
}, 40_000);
