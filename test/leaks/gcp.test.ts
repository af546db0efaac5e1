/**
 * No secret leaks with the gcp provider (real @google-cloud/kms SDK) over TLS with a
 * service-account credentials file: its private key and the self-signed JWTs the SDK sends as
 * bearer tokens must not show up anywhere. See ./scenario.ts.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GcpKekProvider } from '../../src/kek/gcp/provider.js';
import { FakeGcpKms, type FaultKind } from '../fakes/gcp-kms/server.js';
import { selfSignedCert, type TestCert } from '../fakes/gcp-kms/tls.js';
import { setEnv } from '../fakes/aws-kms/harness.js';
import { expectNoLeaks, runLeakScenario } from './scenario.js';

const KEY = 'projects/leaks/locations/global/keyRings/k8s/cryptoKeys/etcd';
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const PRIVATE_KEY_PEM = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const PRIVATE_KEY_DER = privateKey.export({ type: 'pkcs8', format: 'der' });

let cert: TestCert;
let fake: FakeGcpKms;
let credentialsFile: string;
let restoreEnv: () => void;

beforeAll(async () => {
  cert = selfSignedCert();
  fake = await FakeGcpKms.start({ tls: { certPem: cert.certPem, keyPem: cert.keyPem } });
  fake.createKey(KEY);
  credentialsFile = join(cert.dir, 'sa.json');
  writeFileSync(
    credentialsFile,
    JSON.stringify({
      type: 'service_account',
      project_id: 'leaks',
      private_key_id: 'leak-test-key-1',
      private_key: PRIVATE_KEY_PEM,
      client_email: 'kms-plugin@leaks.iam.gserviceaccount.com',
      client_id: '1',
      token_uri: 'http://127.0.0.1:9/token-not-used',
    }),
    { mode: 0o600 },
  );
  restoreEnv = setEnv({
    GOOGLE_APPLICATION_CREDENTIALS: undefined,
    METADATA_SERVER_DETECTION: 'none',
    CLOUDSDK_CONFIG: join(cert.dir, 'no-gcloud'),
  });
});
afterAll(async () => {
  await fake.close();
  cert.cleanup();
  restoreEnv();
});

const fault = (kind: FaultKind) => ({
  name: kind,
  inject: () => fake.injectFault({ kind }),
  clear: () => fake.clearFaults(),
});

test('gcp: no seed, DEK, wrapped DEK, private key or bearer JWT in logs, metrics, health pages or errors', async () => {
  const report = await runLeakScenario({
    config: () => ({
      provider: 'gcp',
      gcp: {
        keyName: KEY,
        endpoint: `localhost:${fake.port}`,
        caFile: cert.certFile,
        credentialsFile,
        attemptTimeout: '800ms',
      },
    }),
    proto: GcpKekProvider.prototype,
    rotateKek: () => {
      fake.addVersion(KEY, { primary: true });
    },
    faults: [
      fault('resource_exhausted'),
      fault('unavailable'),
      fault('permission_denied'),
      fault('unauthenticated'),
      fault('internal'),
      fault('hang'),
      fault('corrupt_checksum'),
      {
        name: 'primary version disabled',
        inject: () => fake.disableVersion(KEY, fake.primary(KEY)?.id ?? 0),
        clear: () => fake.enableVersion(KEY, fake.primary(KEY)?.id ?? 0),
      },
    ],
    secrets: () => {
      const bearers = [...new Set(fake.calls.map((c) => c.authorization ?? ''))].filter((a) => a.length > 20);
      return [
        ['service-account private key (PEM)', PRIVATE_KEY_PEM],
        ['service-account private key (DER)', PRIVATE_KEY_DER],
        ...bearers.map((a, i): [string, string] => [`bearer JWT #${i}`, a.replace(/^Bearer /, '')]),
        ...bearers.map((a, i): [string, string] => [`bearer JWT #${i} signature`, a.split('.').at(-1) ?? '']),
        ...fake
          .keyMaterial(KEY)
          .filter((m) => /^[0-9a-f]+$/.test(m))
          .map((m, i): [string, Buffer] => [`key material #${i}`, Buffer.from(m, 'hex')]),
      ];
    },
  });
  expect(fake.calls.some((c) => /^Bearer eyJ/.test(c.authorization ?? ''))).toBe(true);
  expectNoLeaks(report, 8);
}, 60_000);
