/**
 * No secret leaks with the aws provider (real SDK, static keys and a session token from the
 * environment) against the AWS KMS fake, which verifies every SigV4 signature; one fault has AWS
 * echo the credentials in its error message. See ./scenario.ts.
 */
import { afterAll, beforeAll, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { AwsKmsProvider } from '../../src/kek/aws/provider.js';
import { FakeAwsKms, type FakeKey } from '../fakes/aws-kms/index.js';
import { ISOLATED_AWS_ENV, setEnv } from '../fakes/aws-kms/harness.js';
import { expectNoLeaks, runLeakScenario } from './scenario.js';

const ACCESS_KEY_ID = `AKIA${randomBytes(8).toString('hex').toUpperCase()}`;
const SECRET_ACCESS_KEY = randomBytes(30).toString('base64');
const SESSION_TOKEN = `IQoJb3JpZ2luX2VjE${randomBytes(48).toString('base64')}`;

let fake: FakeAwsKms;
let key: FakeKey;
let restoreEnv: () => void;

beforeAll(async () => {
  restoreEnv = setEnv({
    ...ISOLATED_AWS_ENV,
    AWS_ACCESS_KEY_ID: ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
    AWS_SESSION_TOKEN: SESSION_TOKEN,
  });
  fake = new FakeAwsKms();
  fake.addCredentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN);
  await fake.listen();
  key = fake.createKey();
});
afterAll(async () => {
  await fake.close();
  restoreEnv();
});

test('aws: no seed, DEK, wrapped DEK, credential or key material in logs, metrics, health pages or errors', async () => {
  const setRule = (f: FakeAwsKms['faultRule']) => () => {
    fake.faultRule = f;
  };
  const report = await runLeakScenario({
    config: () => ({
      provider: 'aws',
      aws: { keyId: key.arn, region: fake.region, endpoint: fake.url, attemptTimeout: '500ms' },
    }),
    proto: AwsKmsProvider.prototype,
    rotateKek: () => fake.rotate(key.keyId),
    faults: [
      {
        name: 'throttled',
        inject: setRule(() => ({ type: 'ThrottlingException' })),
        clear: setRule(undefined),
      },
      {
        name: 'unavailable',
        inject: setRule(() => ({ type: 'KMSInternalException', status: 500 })),
        clear: setRule(undefined),
      },
      { name: 'outage (hang)', inject: setRule(() => ({ hang: true })), clear: setRule(undefined) },
      { name: 'connection reset', inject: setRule(() => ({ reset: true })), clear: setRule(undefined) },
      {
        name: 'permission denied',
        inject: setRule(() => ({
          type: 'AccessDeniedException',
          message: 'not authorized to perform kms:Decrypt',
        })),
        clear: setRule(undefined),
      },
      {
        name: 'credentials rejected',
        inject: setRule(() => ({
          type: 'UnrecognizedClientException',
          message: 'The security token included in the request is invalid.',
        })),
        clear: setRule(undefined),
      },
      {
        // AWS's own message echoes the credentials: the shared scrubber must take them out of
        // the error message, the logged cause and the gRPC status (issue 14).
        name: 'error message echoing the credentials',
        inject: setRule(() => ({
          type: 'InvalidSignatureException',
          message: `The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key ${SECRET_ACCESS_KEY} and signing method. Session token ${SESSION_TOKEN}, access key ${ACCESS_KEY_ID}`,
        })),
        clear: setRule(undefined),
      },
      {
        name: 'key disabled',
        inject: () => fake.setKeyState(key.keyId, 'Disabled'),
        clear: () => fake.setKeyState(key.keyId, 'Enabled'),
      },
    ],
    secrets: () => [
      ['AWS_ACCESS_KEY_ID', ACCESS_KEY_ID],
      ['AWS_SECRET_ACCESS_KEY', SECRET_ACCESS_KEY],
      ['AWS_SESSION_TOKEN', SESSION_TOKEN],
      ...key.materials.map((m, i): [string, Buffer] => [`KMS key material #${i}`, m.bytes]),
    ],
  });
  expectNoLeaks(report, 8);
  // The echoed credentials did reach error messages, scrubbed.
  expect(
    report.errorMessages.some((m) => m.includes('InvalidSignatureException') && m.includes('[redacted]')),
  ).toBe(true);
}, 60_000);
