/**
 * Azure Key Vault answering 429 with Retry-After, through the whole plugin with a real
 * client-secret credential against the fake Entra ID: a Retry-After that fits in the apiserver's
 * deadline is waited out (the cold Decrypt succeeds); one that does not fails fast instead of
 * sleeping past the deadline. Status answers from memory throughout, keeps its key_id, and healthz
 * reports persistent throttling after probe.healthGrace and recovers within a probe interval.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { status as grpcStatus } from '@grpc/grpc-js';
import { makeTestPki } from '../fakes/azure-keyvault/certs.js';
import { FakeEntraId } from '../fakes/azure-keyvault/entra.js';
import { TempDir as AzureDir } from '../fakes/azure-keyvault/harness.js';
import { FakeKeyVault } from '../fakes/azure-keyvault/server.js';
import {
  APISERVER_DEADLINE_MS,
  CrashWatch,
  coldCiphertexts,
  PROBE,
  TempDir,
  encryptSeed,
  expectRoundTrip,
  expectStatusFromMemory,
  startInProcess,
  timedDecrypt,
  timeToHealthy,
  until,
  type Running,
  type Sealed,
} from './support.js';

const TENANT = '00000000-0000-0000-0000-0000000000aa';
const CLIENT = '00000000-0000-0000-0000-00000000fa17';
const SECRET = `faults-secret-${process.pid}`;

const pki = makeTestPki();
const files = new AzureDir();
const dir = new TempDir();
const entra = new FakeEntraId(TENANT, pki);
const vault = new FakeKeyVault({
  pki,
  tenantId: TENANT,
  acceptToken: (t) => entra.isIssued(t, 'https://vault.azure.net'),
});

function azureConfig(): Record<string, unknown> {
  return {
    provider: 'azure',
    azure: {
      vaultUrl: vault.url,
      keyName: 'kek',
      credential: 'client-secret',
      tenantId: TENANT,
      clientId: CLIENT,
      clientSecretFile: files.file('client-secret', SECRET),
      authorityHost: entra.url,
      caFile: files.file('ca.crt', pki.ca, 0o644),
      disableChallengeResourceVerification: true,
    },
  };
}

let cold: Sealed[] = [];

beforeAll(async () => {
  entra.addClientSecret(CLIENT, SECRET);
  await entra.listen();
  await vault.listen();
  vault.createKey('kek');
  // Ciphertexts from another replica: their DEKs need a remote unwrap in the plugin under test.
  cold = await coldCiphertexts(dir, azureConfig(), 3);
}, 30_000);

afterAll(async () => {
  await vault.close();
  await entra.close();
  files.remove();
  dir.remove();
  cold = [];
});

const throttle = (retryAfter: string, n: number): void => {
  for (let i = 0; i < n; i += 1) vault.faults.push({ status: 429, code: 'Throttled', retryAfter });
};

test('429 with Retry-After: waited out inside the deadline, failing fast when it does not fit', async () => {
  const p: Running = await startInProcess(dir, azureConfig());
  const crashes = new CrashWatch().start();
  try {
    const { key_id: keyId, healthz } = await p.client.status();
    expect(healthz).toBe('ok');
    const mine = await encryptSeed(p.client);

    // Retry-After 1 s on the next two requests: the unwrap waits and succeeds within 3 s.
    vault.faults.length = 0;
    throttle('1', 2);
    const waited = await timedDecrypt(p.client, cold[0], APISERVER_DEADLINE_MS);
    expect(waited.error?.details).toBeUndefined();
    expect(waited.plaintext?.equals(cold[0].seed)).toBe(true);
    expect(waited.ms).toBeGreaterThanOrEqual(900);
    expect(waited.ms).toBeLessThan(APISERVER_DEADLINE_MS);
    expect(vault.seen.filter((r) => r.status === 429).length).toBeGreaterThanOrEqual(1);

    // Persistent 429 with Retry-After 30 s: no waiting past the deadline, a fast RESOURCE_EXHAUSTED.
    throttle('30', 100_000);
    const faultStart = Date.now();
    await expectStatusFromMemory(p.client, keyId);
    const refused = await timedDecrypt(p.client, cold[1], APISERVER_DEADLINE_MS);
    expect(refused.error?.code).toBe(grpcStatus.RESOURCE_EXHAUSTED);
    expect(refused.error?.details).toMatch(/Retry-After 30 s does not fit/);
    expect(refused.ms).toBeLessThan(1000);
    await expectRoundTrip(p.client, mine); // cached DEK
    const during = await encryptSeed(p.client);
    expect(during.enc.key_id).toBe(keyId);
    await expectRoundTrip(p.client, during);

    const reason = await until(
      'healthz to report the throttling',
      async () => {
        const s = await p.client.status(1000);
        expect(s.key_id).toBe(keyId);
        return s.healthz !== 'ok' ? s.healthz : undefined;
      },
      PROBE.healthGraceMs + 2 * (PROBE.timeoutMs + PROBE.intervalMs) + 1000,
    );
    expect(reason).toMatch(/throttled/);
    expect(Date.now() - faultStart).toBeGreaterThanOrEqual(PROBE.healthGraceMs - PROBE.intervalMs);
    await expectStatusFromMemory(p.client, keyId);

    vault.faults.length = 0;
    // Throttled probes fail fast (no breaker, no waiting): recovery within one probe interval.
    expect(await timeToHealthy(p.client)).toBeLessThan(PROBE.intervalMs + 300);
    expect((await p.client.status()).key_id).toBe(keyId);
    await expectRoundTrip(p.client, cold[2]);
    expect(crashes.errors).toEqual([]);
  } finally {
    crashes.stop();
    vault.faults.length = 0;
    await p.close();
  }
}, 40_000);
