/**
 * Issue 12.1, for every provider against its wire-level fake: the KMS answers ONE unwrap with a
 * wrong DEK (a corrupted response, a buggy proxy or HSM). The plugin must not cache it: the
 * Decrypt fails UNAVAILABLE (a KMS fault, never INVALID_ARGUMENT), a log line and
 * kms_plugin_dek_verification_failures_total record it, and the next Decrypt unwraps again and
 * returns the right plaintext.
 *
 * The reader is a fresh plugin (empty cache); the ciphertexts come from another replica.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { status as grpcStatus } from '@grpc/grpc-js';
import { join } from 'node:path';
import { generateKeyFile, writeKeyFile } from '../../src/kek/local/keyfile.js';
import { LocalProvider } from '../../src/kek/local/provider.js';
import { FakeAwsKms } from '../fakes/aws-kms/index.js';
import { STATIC_AWS_ENV, setEnv } from '../fakes/aws-kms/harness.js';
import { FakeGcpKms } from '../fakes/gcp-kms/server.js';
import { AzurePluginFixture } from '../fakes/azure-keyvault/plugin-fixture.js';
import { VaultHarness } from '../fakes/vault-transit/harness.js';
import {
  PROBE_CONFIG,
  TempDir,
  coldCiphertexts,
  decryptSealed,
  isServiceError,
  startInProcess,
} from './support.js';

interface Fixture {
  name: string;
  config(): Record<string, unknown>;
  /** Makes the next unwrap answer carry a wrong DEK. */
  corruptNextUnwrap(): void;
}

const dir = new TempDir();
let restoreEnv: () => void = () => undefined;

// --- local: no remote KMS; the "response" is the provider's return value.
const keyFile = join(dir.path, 'kek.json');
let corruptLocal = 0;
const realLocalUnwrap = LocalProvider.prototype.unwrap;

// --- aws
const aws = new FakeAwsKms();
let awsKeyArn = '';

// --- gcp
let gcp: FakeGcpKms;
const GCP_KEY = 'projects/test-project/locations/global/keyRings/k8s/cryptoKeys/dekcheck';

// --- azure
const az = new AzurePluginFixture();

// --- vault
let vault: VaultHarness;

beforeAll(async () => {
  writeKeyFile(keyFile, generateKeyFile());
  LocalProvider.prototype.unwrap = async function (this: LocalProvider, ...args) {
    const dek = await realLocalUnwrap.apply(this, args);
    if (corruptLocal > 0) {
      corruptLocal -= 1;
      dek[0] ^= 0x20;
    }
    return dek;
  };
  restoreEnv = setEnv({ ...STATIC_AWS_ENV, METADATA_SERVER_DETECTION: 'none' });
  await aws.listen();
  awsKeyArn = aws.createKey().arn;
  gcp = await FakeGcpKms.start();
  gcp.createKey(GCP_KEY);
  await az.start();
  vault = await new VaultHarness().start();
  vault.fake.createKey('kek');
}, 30_000);

afterAll(async () => {
  LocalProvider.prototype.unwrap = realLocalUnwrap;
  restoreEnv();
  await aws.close();
  await gcp.close();
  await az.close();
  await vault.close();
  dir.remove();
});

const fixtures: Fixture[] = [
  {
    name: 'local',
    config: () => ({ provider: 'local', local: { keyFile } }),
    corruptNextUnwrap: () => {
      corruptLocal = 1;
    },
  },
  {
    name: 'aws',
    config: () => ({ provider: 'aws', aws: { keyId: awsKeyArn, region: aws.region, endpoint: aws.url } }),
    corruptNextUnwrap: () => aws.faults.push({ op: 'Decrypt', corruptPlaintext: true }),
  },
  {
    name: 'gcp',
    config: () => ({
      provider: 'gcp',
      probe: { ...PROBE_CONFIG, timeout: '5s' },
      gcp: { keyName: GCP_KEY, endpoint: gcp.endpoint, insecure: true },
    }),
    corruptNextUnwrap: () => gcp.injectFault({ kind: 'corrupt_plaintext', method: 'decrypt', times: 1 }),
  },
  {
    name: 'azure',
    config: () => az.config(),
    corruptNextUnwrap: () => az.vault.faults.push({ op: 'unwrapKey', corruptResult: true }),
  },
  {
    name: 'vault',
    config: () => ({
      provider: 'vault',
      vault: {
        address: vault.fake.url,
        keyName: 'kek',
        auth: {
          method: 'token',
          tokenFile: vault.file('token', `${vault.fake.issueToken({ ttlSeconds: 3600 })}\n`),
        },
      },
    }),
    corruptNextUnwrap: () => vault.fake.faults.push({ match: 'decrypt', corruptPlaintext: true }),
  },
];

async function failures(metrics: { registry: { getSingleMetricAsString(n: string): Promise<string> } }) {
  const text = await metrics.registry.getSingleMetricAsString('kms_plugin_dek_verification_failures_total');
  return text
    .split('\n')
    .filter((l) => l.startsWith('kms_plugin_dek_verification_failures_total{'))
    .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
}

describe.each(fixtures)('$name: one corrupted unwrap answer', (f) => {
  it('fails the Decrypt as a KMS fault (UNAVAILABLE), caches nothing, logs and counts it; the next Decrypt unwraps again and works', async () => {
    const [sealed] = await coldCiphertexts(dir, f.config(), 1);
    const reader = await startInProcess(dir, f.config());
    try {
      f.corruptNextUnwrap();
      const err = await decryptSealed(reader.client, sealed).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isServiceError(err)).toBe(true);
      if (isServiceError(err)) {
        expect(err.code).toBe(grpcStatus.UNAVAILABLE);
        expect(err.code).not.toBe(grpcStatus.INVALID_ARGUMENT);
        expect(err.details).toMatch(/failed verification/);
      }
      expect(reader.plugin.envelope.cacheSize).toBe(0);
      expect(await failures(reader.plugin.metrics)).toBe(1);
      expect(reader.log.lines.join('\n')).toMatch(/KMS returned a DEK that failed verification/);
      const out = await decryptSealed(reader.client, sealed);
      expect(Buffer.from(out.plaintext).equals(sealed.seed)).toBe(true);
      expect(reader.plugin.envelope.cacheSize).toBe(1);
    } finally {
      await reader.close();
    }
  }, 30_000);
});
