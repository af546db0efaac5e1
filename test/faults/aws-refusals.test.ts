/**
 * AWS KMS refusing the plugin while the network is fine: 50 % and then 100 % throttling,
 * permission revoked (the IAM policy no longer allows kms:*), and the key disabled or scheduled
 * for deletion mid-run. Only the last two make the KEK unusable, so only they stop writes (Status
 * fails); the others degrade healthz after probe.healthGrace. See ./aws-scenario.ts.
 */
import { expect, test } from '@jest/globals';
import { status as grpcStatus } from '@grpc/grpc-js';
import { runAwsScenario, useAwsFake } from './aws-scenario.js';

const ctx = useAwsFake();

async function retries(metrics: { registry: { getSingleMetric(n: string): unknown } }): Promise<number> {
  const m = metrics.registry.getSingleMetric('kms_plugin_remote_retries_total') as
    { get(): Promise<{ values: Array<{ value: number }> }> } | undefined;
  return ((await m?.get())?.values ?? []).reduce((a, v) => a + v.value, 0);
}

test('50 % throttling: retries absorb it; probes, cold Decrypts and healthz stay fine', async () => {
  let n = 0;
  await runAwsScenario({
    fake: ctx.fake,
    dir: ctx.dir,
    inject: () => {
      ctx.fake.faultRule = () =>
        n++ % 2 === 0 ? { type: 'ThrottlingException', message: 'Rate exceeded' } : undefined;
    },
    clear: () => {
      ctx.fake.faultRule = undefined;
    },
    degradesHealth: false,
    coldCodes: [grpcStatus.OK],
    during: async (p) => {
      expect(ctx.fake.log.filter((r) => r.error === 'ThrottlingException').length).toBeGreaterThan(0);
      expect(await retries(p.plugin.metrics)).toBeGreaterThan(0);
    },
  });
}, 40_000);

test('100 % throttling: healthz reports it after the grace period; writes go on', async () => {
  await runAwsScenario({
    fake: ctx.fake,
    dir: ctx.dir,
    inject: () => {
      ctx.fake.faultRule = () => ({ type: 'ThrottlingException', message: 'Rate exceeded' });
    },
    clear: () => {
      ctx.fake.faultRule = undefined;
    },
    degradesHealth: true,
    coldCodes: [grpcStatus.RESOURCE_EXHAUSTED],
  });
}, 40_000);

test('permission revoked: PERMISSION_DENIED for cold Decrypts, healthz reports it; writes go on', async () => {
  await runAwsScenario({
    fake: ctx.fake,
    dir: ctx.dir,
    inject: () => {
      ctx.fake.faultRule = () => ({
        type: 'AccessDeniedException',
        message: 'User is not authorized to perform: kms:Decrypt on this resource',
      });
    },
    clear: () => {
      ctx.fake.faultRule = undefined;
    },
    degradesHealth: true,
    coldCodes: [grpcStatus.PERMISSION_DENIED],
    during: async () => {
      expect(ctx.fake.log.filter((r) => r.error === 'AccessDeniedException').length).toBeGreaterThan(0);
    },
  });
}, 40_000);

test('key disabled mid-run: Status fails (writes stop) within a probe; re-enabled: back', async () => {
  await runAwsScenario({
    fake: ctx.fake,
    dir: ctx.dir,
    inject: (key) => ctx.fake.setKeyState(key, 'Disabled'),
    clear: (key) => ctx.fake.setKeyState(key, 'Enabled'),
    degradesHealth: true,
    stopsWrites: true,
    coldCodes: [grpcStatus.FAILED_PRECONDITION],
  });
}, 40_000);

test('key scheduled for deletion mid-run: Status fails (writes stop); deletion cancelled: back', async () => {
  await runAwsScenario({
    fake: ctx.fake,
    dir: ctx.dir,
    inject: (key) => ctx.fake.setKeyState(key, 'PendingDeletion'),
    clear: (key) => ctx.fake.setKeyState(key, 'Enabled'),
    degradesHealth: true,
    stopsWrites: true,
    coldCodes: [grpcStatus.FAILED_PRECONDITION],
  });
}, 40_000);
