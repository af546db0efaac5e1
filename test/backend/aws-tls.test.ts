/**
 * aws.caFile (issue 14: the common `caFile` name, which AWS lacked): the real SDK talks to the fake
 * over https when the fake's CA is configured, and refuses it with the system roots only.
 */
import { randomBytes } from 'node:crypto';
import { timeoutSignal } from '../../src/deadline.js';
import { FakeAwsKms } from '../fakes/aws-kms/index.js';
import {
  STATIC_AWS_ENV,
  TEST_ACCESS_KEY_ID,
  TEST_SECRET_ACCESS_KEY,
  makeAwsProvider,
  setEnv,
  type Harness,
} from '../fakes/aws-kms/harness.js';
import { createTestPki, type TestPki } from '../support/test-pki.js';

let fake: FakeAwsKms;
let pki: TestPki;
let restoreEnv: () => void;
const open: Harness[] = [];

beforeAll(async () => {
  restoreEnv = setEnv({ ...STATIC_AWS_ENV, AWS_CA_BUNDLE: undefined });
  pki = createTestPki({ caName: 'test aws CA' });
  fake = new FakeAwsKms();
  fake.addCredentials(TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY);
  await fake.listen(0, '127.0.0.1', { cert: Buffer.from(pki.cert), key: Buffer.from(pki.key) });
});
afterAll(async () => {
  for (const h of open) await h.provider.close();
  await fake.close();
  pki.remove();
  restoreEnv();
});

async function harness(overrides: Record<string, unknown>): Promise<Harness> {
  const h = await makeAwsProvider(fake, { maxAttempts: 1, ...overrides });
  open.push(h);
  return h;
}

test('with aws.caFile: round trip over https', async () => {
  expect(fake.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  const key = fake.createKey();
  const h = await harness({ keyId: key.arn, caFile: pki.file('ca.crt') });
  const v = await h.provider.currentVersion(timeoutSignal(5000));
  const dek = randomBytes(32);
  const w = await h.provider.wrap(dek, v, timeoutSignal(5000));
  expect(await h.provider.unwrap(w.wrapped, w.ref, timeoutSignal(5000))).toEqual(dek);
});

test('without it, the fake CA is not trusted: the call fails and the fake sees no request', async () => {
  const key = fake.createKey();
  const before = fake.log.length;
  const h = await harness({ keyId: key.arn });
  await expect(h.provider.currentVersion(timeoutSignal(5000))).rejects.toMatchObject({
    kind: expect.stringMatching(/^(unavailable|permission_denied|invalid_input)$/),
  });
  expect(fake.log.length).toBe(before);
});

test('an unreadable aws.caFile is a config error naming the field', async () => {
  const key = fake.createKey();
  await expect(harness({ keyId: key.arn, caFile: '/nonexistent/ca.pem' })).rejects.toThrow(
    /aws\.caFile: cannot read \/nonexistent\/ca\.pem \(ENOENT\)/,
  );
});
