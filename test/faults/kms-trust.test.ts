/**
 * Issue 12, plugin level against the wire-level fakes (real SDKs, real gRPC):
 *  - 12.2/12.3 a key that becomes unusable after start-up, said with an error (AWS DescribeKey
 *    DisabledException / KMSInvalidStateException / NotFoundException) or a state (GCP: no primary,
 *    primary DESTROY_SCHEDULED): Status fails FAILED_PRECONDITION within one probe naming the cause,
 *    Encrypt fails FAILED_PRECONDITION, Decrypt of cached DEKs goes on; recovery within one probe.
 *  - 12.4 GCP without cloudkms.cryptoKeyVersions.list: starts, serves, says so in /healthz?verbose.
 *  - 12.5 a KMS that answers in 2 s serves a Decrypt with the apiserver's 3 s deadline; an Azure
 *    Retry-After longer than the deadline fails fast (RESOURCE_EXHAUSTED), not late.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { status as grpcStatus } from '@grpc/grpc-js';
import { randomBytes, randomUUID } from 'node:crypto';
import { createHealthView } from '../../src/health/view.js';
import { renderChecks } from '../../src/health/http-format.js';
import { AzurePluginFixture } from '../fakes/azure-keyvault/plugin-fixture.js';
import { FakeAwsKms } from '../fakes/aws-kms/index.js';
import { STATIC_AWS_ENV, setEnv } from '../fakes/aws-kms/harness.js';
import { FakeGcpKms } from '../fakes/gcp-kms/server.js';
import {
  PROBE,
  PROBE_CONFIG,
  TempDir,
  coldCiphertexts,
  decryptSealed,
  encryptSeed,
  isServiceError,
  startInProcess,
  type Running,
} from './support.js';

const dir = new TempDir();
const aws = new FakeAwsKms();
let gcp: FakeGcpKms;
const GCP_KEY = 'projects/test-project/locations/global/keyRings/k8s/cryptoKeys/trust';
let restoreEnv: () => void = () => undefined;

beforeAll(async () => {
  restoreEnv = setEnv({ ...STATIC_AWS_ENV, METADATA_SERVER_DETECTION: 'none' });
  await aws.listen();
  gcp = await FakeGcpKms.start();
}, 20_000);
afterAll(async () => {
  restoreEnv();
  await aws.close();
  await gcp.close();
  dir.remove();
});

async function codeOf(p: Promise<unknown>): Promise<{ code?: number; details?: string }> {
  try {
    await p;
    return {};
  } catch (err) {
    return isServiceError(err) ? { code: err.code, details: err.details } : { details: String(err) };
  }
}

/** Waits at most two probe intervals plus a margin: "within one probe". */
async function withinOneProbe<T>(fn: () => Promise<T | undefined>): Promise<T> {
  const until = Date.now() + 2 * PROBE.intervalMs + PROBE.timeoutMs + 1500;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error('not within one probe');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function expectWritesStopped(p: Running, cause: RegExp): Promise<void> {
  const status = await withinOneProbe(async () => {
    const s = await codeOf(p.client.status(1000));
    return s.code === grpcStatus.FAILED_PRECONDITION ? s : undefined;
  });
  expect(status.details).toMatch(cause);
  const enc = await codeOf(p.client.encrypt({ plaintext: randomBytes(32), uid: randomUUID() }));
  expect(enc.code).toBe(grpcStatus.FAILED_PRECONDITION);
}

async function expectRecovered(p: Running): Promise<void> {
  await withinOneProbe(async () => ((await p.client.status(1000)).healthz === 'ok' ? true : undefined));
  await encryptSeed(p.client);
}

describe('AWS: "key unusable" said with an error from DescribeKey (issue 12.2/12.3)', () => {
  it.each([
    ['DisabledException', /disabled/],
    ['KMSInvalidStateException', /pending deletion/],
    ['NotFoundException', /not found/],
  ])(
    '%s: Status and Encrypt fail FAILED_PRECONDITION within one probe; cached Decrypts go on; recovery within one probe',
    async (type, cause) => {
      const key = aws.createKey();
      const p = await startInProcess(dir, {
        provider: 'aws',
        aws: { keyId: key.arn, region: aws.region, endpoint: aws.url },
      });
      try {
        const sealed = await encryptSeed(p.client);
        const message =
          type === 'KMSInvalidStateException' ? `${key.arn} is pending deletion.` : `${type} injected`;
        aws.faultRule = (op) => (op === 'DescribeKey' ? { type, message } : undefined);
        await expectWritesStopped(p, cause);
        const status = await codeOf(p.client.status(1000));
        expect(status.details).toContain(type);
        const out = await decryptSealed(p.client, sealed);
        expect(Buffer.from(out.plaintext).equals(sealed.seed)).toBe(true);
        aws.faultRule = undefined;
        await expectRecovered(p);
      } finally {
        aws.faultRule = undefined;
        await p.close();
      }
    },
    30_000,
  );
});

describe('GCP: a key with no primary, or a primary scheduled for destruction (issue 12.2)', () => {
  it('stops writes within one probe naming the cause, and recovers within one probe', async () => {
    const name = `${GCP_KEY}-a`;
    gcp.createKey(name);
    const p = await startInProcess(dir, {
      provider: 'gcp',
      probe: { ...PROBE_CONFIG, timeout: '5s' },
      gcp: { keyName: name, endpoint: gcp.endpoint, insecure: true },
    });
    try {
      gcp.clearPrimary(name);
      await expectWritesStopped(p, /no primary version/);
      gcp.setPrimary(name, 1);
      await expectRecovered(p);
      gcp.scheduleDestroy(name, 1);
      await expectWritesStopped(p, /pending deletion.*scheduled for destruction/);
      gcp.enableVersion(name, 1);
      await expectRecovered(p);
    } finally {
      await p.close();
    }
  }, 30_000);
});

describe('GCP without cloudkms.cryptoKeyVersions.list (issue 12.4)', () => {
  it.each(['permission_denied', 'unimplemented'] as const)(
    '%s: starts, serves with the primary, and /healthz?verbose says what is missing',
    async (kind) => {
      const name = `${GCP_KEY}-${kind.replace('_', '-')}`;
      gcp.createKey(name);
      gcp.injectFault({ kind, method: 'listCryptoKeyVersions' });
      let p: Running | undefined;
      try {
        p = await startInProcess(dir, {
          provider: 'gcp',
          probe: { ...PROBE_CONFIG, timeout: '5s' },
          gcp: { keyName: name, endpoint: gcp.endpoint, insecure: true },
        });
        const sealed = await encryptSeed(p.client);
        const out = await decryptSealed(p.client, sealed);
        expect(Buffer.from(out.plaintext).equals(sealed.seed)).toBe(true);
        const view = createHealthView({ watcher: p.plugin.watcher });
        const body = renderChecks(view.health().checks, { verbose: true, endpoint: 'healthz' }).body;
        expect(body).toMatch(
          /\[\+\]optional-listCryptoKeyVersions ok: skipped \(\w+\): grant cloudkms\.cryptoKeyVersions\.list/,
        );
        const warns = p.log.lines.filter(
          (l) => l.includes('"level":"warn"') && l.includes('cloudkms.cryptoKeyVersions.list'),
        );
        expect(warns).toHaveLength(1);
      } finally {
        gcp.clearFaults();
        await p?.close();
      }
    },
    30_000,
  );
});

describe('deadlines reach every remote call (issue 12.5)', () => {
  it('a KMS that answers every call in 2 s serves a cold Decrypt under a 3 s caller deadline', async () => {
    const key = aws.createKey();
    const config = { provider: 'aws', aws: { keyId: key.arn, region: aws.region, endpoint: aws.url } };
    const [sealed] = await coldCiphertexts(dir, config, 1);
    const p = await startInProcess(dir, config);
    try {
      aws.latencyMs = 2000;
      const out = await decryptSealed(p.client, sealed, 3000);
      expect(Buffer.from(out.plaintext).equals(sealed.seed)).toBe(true);
    } finally {
      aws.latencyMs = 0;
      await p.close();
    }
  }, 30_000);
});

describe('Azure Retry-After longer than the deadline (issue 12.5)', () => {
  const az = new AzurePluginFixture();
  beforeAll(async () => {
    await az.start();
  });
  afterAll(async () => {
    await az.close();
  });

  it('a cold Decrypt fails fast with RESOURCE_EXHAUSTED instead of waiting past the caller deadline', async () => {
    const config = az.config();
    const [sealed] = await coldCiphertexts(dir, config, 1);
    const p = await startInProcess(dir, config);
    try {
      az.vault.faults.push({ op: 'unwrapKey', status: 429, code: 'Throttled', retryAfter: '30' });
      const t0 = Date.now();
      const r = await codeOf(decryptSealed(p.client, sealed, 3000));
      expect(r.code).toBe(grpcStatus.RESOURCE_EXHAUSTED);
      expect(r.details).toMatch(/Retry-After 30 s does not fit/);
      expect(Date.now() - t0).toBeLessThan(2900); // answered before the caller deadline, not after
      // The next Decrypt (no throttling) works.
      const out = await decryptSealed(p.client, sealed, 3000);
      expect(Buffer.from(out.plaintext).equals(sealed.seed)).toBe(true);
    } finally {
      await p.close();
    }
  }, 30_000);
});
