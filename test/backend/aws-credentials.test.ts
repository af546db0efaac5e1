/**
 * The aws provider's credential chain with the real SDK: container credentials (EKS Pod
 * Identity / ECS), web identity (IRSA) and an assumed role, each against a loopback fake. The KMS
 * fake verifies every SigV4 signature against the credentials the fakes issued, so a request signed
 * with anything else fails.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { timeoutSignal } from '../../src/deadline.js';
import { PluginError } from '../../src/errors.js';
import { FakeAwsKms, FakeContainerCredentials, FakeSts } from '../fakes/aws-kms/index.js';
import { ISOLATED_AWS_ENV, makeAwsProvider, setEnv, type Harness } from '../fakes/aws-kms/harness.js';

let kms: FakeAwsKms;
let dir: string;
let restoreEnv: () => void;

beforeAll(async () => {
  restoreEnv = setEnv(ISOLATED_AWS_ENV);
  dir = mkdtempSync(join(tmpdir(), 'aws-creds-'));
  kms = new FakeAwsKms();
  await kms.listen();
});
afterAll(async () => {
  await kms.close();
  rmSync(dir, { recursive: true, force: true });
  restoreEnv();
});

const sig = (ms = 3000): AbortSignal => timeoutSignal(ms);

async function roundTrip(h: Harness): Promise<void> {
  const v = await h.provider.currentVersion(sig());
  const dek = randomBytes(32);
  const w = await h.provider.wrap(dek, v, sig());
  expect((await h.provider.unwrap(w.wrapped, w.ref, sig())).equals(dek)).toBe(true);
}

async function metricValue(
  h: Harness,
  name: string,
  labels: Record<string, string> = {},
): Promise<number | undefined> {
  const m = await h.metrics.registry.getSingleMetric(name)?.get();
  return m?.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))?.value;
}

function secretsOf(c: { secretAccessKey: string; sessionToken: string }): string[] {
  return [c.secretAccessKey, c.sessionToken];
}

test('container credentials (EKS Pod Identity / ECS): full URI plus token file', async () => {
  const token = `pod-identity-${randomBytes(8).toString('hex')}`;
  const tokenFile = join(dir, 'eks-pod-identity-token');
  writeFileSync(tokenFile, token);
  const creds = new FakeContainerCredentials(token);
  creds.kms = kms;
  await creds.listen();
  const restore = setEnv({
    AWS_CONTAINER_CREDENTIALS_FULL_URI: creds.fullUri,
    AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: tokenFile,
  });
  const key = kms.createKey();
  const h = await makeAwsProvider(kms, { keyId: key.arn });
  try {
    const from = kms.log.length;
    await roundTrip(h);
    expect(creds.requests.length).toBeGreaterThanOrEqual(1);
    expect(creds.requests.every((r) => r.authorized)).toBe(true);
    const issued = creds.issued[creds.issued.length - 1];
    const seen = kms.log.slice(from);
    expect(seen.map((r) => r.op)).toEqual(['DescribeKey', 'Encrypt', 'Decrypt']);
    expect(
      seen.every((r) => r.status === 200 && r.accessKeyId === issued.accessKeyId && r.hasSecurityToken),
    ).toBe(true);
    // Metrics: one successful fetch, TTL of about an hour.
    expect(await metricValue(h, 'kms_plugin_credential_renewals_total', { outcome: 'ok' })).toBe(1);
    const ttl = await metricValue(h, 'kms_plugin_credential_ttl_seconds');
    expect(ttl).toBeGreaterThan(3500);
    expect(ttl).toBeLessThanOrEqual(3600);
    const logs = h.log.lines.join('\n');
    for (const s of [...secretsOf(issued), token]) expect(logs).not.toContain(s);
  } finally {
    await h.provider.close();
    await creds.close();
    restore();
  }
});

test('container credentials with a wrong token: a clean, non-secret error', async () => {
  const creds = new FakeContainerCredentials('the-right-token');
  creds.kms = kms;
  await creds.listen();
  const tokenFile = join(dir, 'wrong-token');
  writeFileSync(tokenFile, 'a-wrong-token-value');
  const restore = setEnv({
    AWS_CONTAINER_CREDENTIALS_FULL_URI: creds.fullUri,
    AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: tokenFile,
  });
  const key = kms.createKey();
  const h = await makeAwsProvider(kms, { keyId: key.arn });
  try {
    const from = kms.log.length;
    const e = await h.provider.currentVersion(sig(2000)).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(PluginError);
    expect((e as PluginError).kind).toBe('unavailable');
    expect((e as PluginError).message).toContain('credentials');
    expect((e as PluginError).message).not.toContain('a-wrong-token-value');
    expect(kms.log.length).toBe(from); // nothing unsigned reached KMS
    expect(
      await metricValue(h, 'kms_plugin_credential_renewals_total', { outcome: 'error' }),
    ).toBeGreaterThanOrEqual(1);
  } finally {
    await h.provider.close();
    await creds.close();
    restore();
  }
});

/** IRSA: a token file, a fake STS that accepts exactly `jwt`, and the env the EKS webhook sets. */
async function webIdentity(name: string, jwt: string, lifetimeMs?: number) {
  const tokenFile = join(dir, name);
  writeFileSync(tokenFile, jwt);
  const sts = new FakeSts();
  sts.kms = kms;
  sts.webIdentityToken = jwt;
  if (lifetimeMs) sts.lifetimeMs = lifetimeMs;
  await sts.listen();
  const restore = setEnv({
    AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile,
    AWS_ROLE_ARN: roleArn,
    AWS_ROLE_SESSION_NAME: 'kms-plugin-test',
    AWS_ENDPOINT_URL_STS: sts.url,
    AWS_REGION: 'us-east-1',
  });
  return { tokenFile, sts, restore };
}
const roleArn = 'arn:aws:iam::111122223333:role/k8s-kms-plugin';

test('web identity (IRSA): token file + role ARN + STS endpoint', async () => {
  const jwt = `eyJhbGciOiJSUzI1NiJ9.${randomBytes(24).toString('base64url')}.sig`;
  const { sts, restore } = await webIdentity('irsa-token', jwt);
  const key = kms.createKey();
  const h = await makeAwsProvider(kms, { keyId: key.arn });
  try {
    const from = kms.log.length;
    await roundTrip(h);
    expect(sts.calls).toHaveLength(1);
    expect(sts.calls[0]).toMatchObject({ action: 'AssumeRoleWithWebIdentity', roleArn, tokenMatched: true });
    const issued = sts.issued[0];
    expect(kms.log.slice(from).every((r) => r.status === 200 && r.accessKeyId === issued.accessKeyId)).toBe(
      true,
    );
    const logs = h.log.lines.join('\n');
    for (const s of [...secretsOf(issued), jwt]) expect(logs).not.toContain(s);
  } finally {
    await h.provider.close();
    await sts.close();
    restore();
  }
});

test('web identity: the SDK re-reads a rotated token file at the next refresh; a bad one keeps the held credentials', async () => {
  const jwtOf = (): string =>
    `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from(
      JSON.stringify({ sub: 'system:serviceaccount:kube-system:kms', n: randomBytes(8).toString('hex') }),
    ).toString('base64url')}.sig`;
  const first = jwtOf();
  const second = jwtOf();
  // Lifetime inside the SDK's 5-minute refresh window: every call fetches credentials again.
  const { tokenFile, sts, restore } = await webIdentity('irsa-rotating-token', first, 4 * 60_000);
  const key = kms.createKey();
  const h = await makeAwsProvider(kms, { keyId: key.arn });
  try {
    await roundTrip(h);
    const before = sts.calls.length;
    expect(sts.calls.every((c) => c.tokenMatched)).toBe(true);
    // The kubelet rotates the projected token; STS now accepts only the new one.
    writeFileSync(tokenFile, second);
    sts.webIdentityToken = second;
    await roundTrip(h);
    const after = sts.calls.slice(before);
    expect(after.length).toBeGreaterThanOrEqual(1);
    // (A refresh started before the rotation may still land with the old token; the last one
    // carries the new token, read from the file by the SDK.)
    expect(after[after.length - 1]).toMatchObject({
      action: 'AssumeRoleWithWebIdentity',
      tokenMatched: true,
    });
    expect(await metricValue(h, 'kms_plugin_credential_reloads_total', { outcome: 'ok' })).toBe(1);

    // A bad new token: STS refuses it, the credentials already held keep working until they expire.
    writeFileSync(tokenFile, '');
    const fromKms = kms.log.length;
    await roundTrip(h);
    expect(kms.log.slice(fromKms).every((r) => r.status === 200)).toBe(true);
    expect(await metricValue(h, 'kms_plugin_credential_reloads_total', { outcome: 'error' })).toBe(1);
    // STS refused the refresh with the bad token, and the SDK kept the held credentials.
    expect(sts.calls[sts.calls.length - 1].tokenMatched).toBe(false);
    for (const s of [first, second]) expect(h.log.lines.join('\n')).not.toContain(s);
  } finally {
    await h.provider.close();
    await sts.close();
    restore();
  }
});

test('aws.roleArn: the role is assumed with the chain credentials and used for KMS', async () => {
  const sts = new FakeSts();
  sts.kms = kms;
  await sts.listen();
  const restore = setEnv({ AWS_ACCESS_KEY_ID: 'AKIDSOURCEIDENTITY', AWS_SECRET_ACCESS_KEY: 'source-secret' });
  const key = kms.createKey();
  const roleArn = 'arn:aws:iam::444455556666:role/kms-plugin-cross-account';
  const h = await makeAwsProvider(kms, {
    keyId: key.arn,
    roleArn,
    externalId: 'ext-1234',
    roleSessionName: 'cluster-a',
    stsEndpoint: sts.url,
  });
  try {
    const from = kms.log.length;
    await roundTrip(h);
    await roundTrip(h);
    expect(sts.calls).toHaveLength(1); // cached until near expiry
    expect(sts.calls[0]).toMatchObject({
      action: 'AssumeRole',
      roleArn,
      externalId: 'ext-1234',
      roleSessionName: 'cluster-a',
      signedBy: 'AKIDSOURCEIDENTITY',
    });
    const issued = sts.issued[0];
    expect(
      kms.log
        .slice(from)
        .every((r) => r.status === 200 && r.accessKeyId === issued.accessKeyId && r.hasSecurityToken),
    ).toBe(true);
    expect(await metricValue(h, 'kms_plugin_credential_renewals_total', { outcome: 'ok' })).toBe(1);
    const logs = h.log.lines.join('\n');
    for (const s of [...secretsOf(issued), 'source-secret']) expect(logs).not.toContain(s);
    expect(logs).toContain(roleArn);
  } finally {
    await h.provider.close();
    await sts.close();
    restore();
  }
});

test('no credentials anywhere: fails fast with an explanation of the chain', async () => {
  const key = kms.createKey();
  const h = await makeAwsProvider(kms, { keyId: key.arn });
  try {
    const started = Date.now();
    const e = await h.provider.currentVersion(sig(3000)).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(Date.now() - started).toBeLessThan(2000);
    expect(e).toBeInstanceOf(PluginError);
    expect((e as PluginError).kind).toBe('unavailable');
    expect((e as PluginError).message).toMatch(/web identity.*container credentials.*instance profile/);
  } finally {
    await h.provider.close();
  }
});
