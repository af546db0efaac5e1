/**
 * The apiserver-emulation conformance suite against real plugin processes
 * (`node dist/cli/main.js serve --provider aws`) pointed at the wire-level AWS KMS fake, which runs
 * in this test process and verifies every request's SigV4 signature.
 */
import { afterAll, beforeAll } from '@jest/globals';
import { FakeAwsKms } from '../fakes/aws-kms/index.js';
import { tempDir } from '../support/plugin-process.js';
import { defineApiserverConformance, pluginStarter } from './suite.js';

const ACCESS_KEY_ID = 'AKIDCONFORMANCE';
const SECRET_ACCESS_KEY = 'conformance-secret-access-key';

const dir = tempDir('kkp-aws-conf-');
const fake = new FakeAwsKms();
fake.addCredentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY);
const key = fake.createKey({ description: 'conformance KEK' });
const other = fake.createKey({ description: 'other KEK' });
fake.setAlias('alias/k8s-conformance', key.keyId);

beforeAll(async () => {
  await fake.listen();
});
afterAll(async () => {
  await fake.close();
  dir.cleanup();
});

const start = pluginStarter('aws', dir.path, {
  env: {
    AWS_ACCESS_KEY_ID: ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
    AWS_SESSION_TOKEN: '',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: '/nonexistent/aws-config',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
    AWS_PROFILE: '',
  },
});

function startWith(keyId: string, statusVersion: 'v2' | 'v2beta1') {
  return start(
    [
      ...['--provider', 'aws', '--aws-key-id', keyId, '--aws-region', fake.region],
      ...['--aws-endpoint', fake.url, '--aws-cluster', 'conformance'],
    ],
    statusVersion,
  );
}

defineApiserverConformance({
  name: 'aws',
  // Through the alias (resolved by DescribeKey); the other KEK by key ARN.
  start: ({ statusVersion }) => startWith('alias/k8s-conformance', statusVersion),
  startOtherKek: () => startWith(other.arn, 'v2'),
  secrets: () => [
    SECRET_ACCESS_KEY,
    ...key.materials.map((m) => m.bytes.toString('base64')),
    ...key.materials.map((m) => m.bytes.toString('hex')),
  ],
});
