/**
 * The `aws:` config section: flags/env/YAML land in the schema, and every mistake is reported with
 * the field and the fix.
 */
import { loadConfig, validateConfig } from '../../../../src/config/load.js';
import { awsSchema, effectiveEncryptionContext } from '../../../../src/config/providers/aws.js';
import { providerFlags } from '../../../../src/config/schema.js';
import { envName } from '../../../../src/config/fields.js';
import { configError } from '../../../support/config-error.js';

const ARN = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';

function awsError(section: Record<string, unknown>): string {
  return configError(() => validateConfig({ provider: 'aws', aws: section })).message;
}

describe('valid configurations', () => {
  test('a key ARN alone is enough: the region comes from the ARN; defaults apply', () => {
    const c = validateConfig({ provider: 'aws', aws: { keyId: ARN } });
    expect(c.aws).toMatchObject({
      keyId: ARN,
      fips: false,
      roleSessionName: 'k8s-kms-plugin',
      decryptKeyArns: [],
      connectTimeout: 1000,
      maxAttempts: 4,
      concurrency: 16,
    });
    expect(c.aws?.attemptTimeout).toBeUndefined(); // default: the time left before the deadline
    expect(c.aws?.region).toBeUndefined();
    expect(effectiveEncryptionContext(c.aws!)).toEqual({ 'k8s-kms-plugin': 'dek-wrap' });
  });

  test('flags set every field, including the encryption context as key=value pairs', () => {
    const c = loadConfig({
      env: {},
      flags: {
        provider: 'aws',
        'aws-key-id': 'alias/k8s-kek',
        'aws-region': 'eu-west-1',
        'aws-endpoint': 'https://vpce-0abc.kms.eu-west-1.vpce.amazonaws.com',
        'aws-role-arn': 'arn:aws:iam::111122223333:role/kms-plugin',
        'aws-external-id': 'ext-42',
        'aws-cluster': 'prod-eu',
        'aws-encryption-context': 'purpose=k8s-secrets, team=platform',
        'aws-decrypt-key-arns': `${ARN}`,
        'aws-attempt-timeout': '1500ms',
        'aws-max-attempts': '3',
      },
    });
    expect(c.aws).toMatchObject({
      keyId: 'alias/k8s-kek',
      region: 'eu-west-1',
      endpoint: 'https://vpce-0abc.kms.eu-west-1.vpce.amazonaws.com',
      roleArn: 'arn:aws:iam::111122223333:role/kms-plugin',
      externalId: 'ext-42',
      cluster: 'prod-eu',
      encryptionContext: { purpose: 'k8s-secrets', team: 'platform' },
      decryptKeyArns: [ARN],
      attemptTimeout: 1500,
      maxAttempts: 3,
    });
    expect(effectiveEncryptionContext(c.aws!)).toEqual({
      purpose: 'k8s-secrets',
      team: 'platform',
      cluster: 'prod-eu',
    });
  });

  test('env vars follow the flag names', () => {
    const env = Object.fromEntries(
      [
        ['aws-key-id', ARN],
        ['aws-fips', 'true'],
      ].map(([flag, v]) => [envName(providerFlags('aws').find((f) => f.name === flag)!), v]),
    );
    expect(Object.keys(env)).toEqual(['KMS_PLUGIN_AWS_KEY_ID', 'KMS_PLUGIN_AWS_FIPS']);
    const c = loadConfig({ env: { ...env, KMS_PLUGIN_PROVIDER: 'aws' } });
    expect(c.aws?.fips).toBe(true);
    expect(c.aws?.keyId).toBe(ARN);
  });

  test('plain http is accepted for loopback endpoints (tests, local fakes)', () => {
    expect(awsSchema.parse({ keyId: ARN, endpoint: 'http://127.0.0.1:4599' }).endpoint).toBe(
      'http://127.0.0.1:4599',
    );
  });

  test('a multi-Region key id and an alias ARN are accepted', () => {
    expect(() =>
      awsSchema.parse({ keyId: 'mrk-1234abcd12ab34cd56ef1234567890ab', region: 'us-west-2' }),
    ).not.toThrow();
    expect(() => awsSchema.parse({ keyId: 'arn:aws:kms:us-west-2:111122223333:alias/k8s' })).not.toThrow();
  });
});

describe('mistakes are reported with the field and the fix', () => {
  test.each([
    [{ keyId: 'arn:aws:kms:us-east-1:1234:key/abc' }, 'aws.keyId', 'not a valid KMS ARN'],
    [{ keyId: 'arn:aws:kms:us-east-1:111122223333:key/not-a-uuid' }, 'aws.keyId', 'must be a key id'],
    [{ keyId: 'my-key', region: 'us-east-1' }, 'aws.keyId', 'alias (alias/NAME)'],
    [{ keyId: 'alias/has spaces', region: 'us-east-1' }, 'aws.keyId', 'an alias is "alias/"'],
    [{ keyId: 'alias/aws/ebs', region: 'us-east-1' }, 'aws.keyId', 'AWS managed key'],
    [{ keyId: 'alias/k8s' }, 'aws.region', 'is required because aws.keyId "alias/k8s" is not an ARN'],
    [{ keyId: ARN, region: 'us-east-1' }, 'aws.region', 'does not match the region of aws.keyId (eu-west-1)'],
    [{ keyId: 'alias/k8s', region: 'Frankfurt' }, 'aws.region', 'is not an AWS region name'],
    [{ keyId: ARN, endpoint: 'kms.example.com' }, 'aws.endpoint', 'expected a URL'],
    [
      { keyId: ARN, endpoint: 'http://kms.example.com' },
      'aws.endpoint',
      'plain http is allowed only to loopback',
    ],
    [{ keyId: ARN, endpoint: 'https://kms.example.com/path' }, 'aws.endpoint', 'must not have a path'],
    [
      { keyId: ARN, fips: true, endpoint: 'https://kms-fips.eu-west-1.amazonaws.com' },
      'aws.fips',
      'cannot be combined with aws.endpoint',
    ],
    [{ keyId: ARN, roleArn: 'arn:aws:iam::111122223333:user/bob' }, 'aws.roleArn', 'not an IAM role ARN'],
    [{ keyId: ARN, externalId: 'x1' }, 'aws.externalId', 'only applies with aws.roleArn'],
    [{ keyId: ARN, encryptionContext: ['novalue'] }, 'aws.encryptionContext', 'is not key=value'],
    [{ keyId: ARN, encryptionContext: { 'aws:x': 'y' } }, 'aws.encryptionContext', 'reserved by AWS'],
    [{ keyId: ARN, encryptionContext: {} }, 'aws.encryptionContext', 'at least one key=value pair'],
    [
      { keyId: ARN, encryptionContext: { cluster: 'a' }, cluster: 'b' },
      'aws.cluster',
      'conflicts with aws.encryptionContext.cluster',
    ],
    [{ keyId: ARN, decryptKeyArns: ['alias/old'] }, 'aws.decryptKeyArns.0', 'not a key ARN'],
    [{ keyId: ARN, attemptTimeout: 'soon' }, 'aws.attemptTimeout', 'expected a duration'],
    [{ keyId: ARN, maxAttempts: 0 }, 'aws.maxAttempts', 'at least 1'],
    [{ keyId: ARN, regoin: 'eu-west-1' }, 'aws', 'unknown field(s) "regoin"'],
  ])('%j → %s', (section, field, fix) => {
    const message = awsError(section);
    expect(message).toContain(`${field}:`);
    expect(message).toContain(fix);
  });

  test('a missing keyId is named', () => {
    expect(awsError({ region: 'us-east-1' })).toMatch(/aws\.keyId: .*aws\.keyId/);
  });

  test('provider aws without an aws section says how to add one', () => {
    expect(() => validateConfig({ provider: 'aws' })).toThrow(
      /aws: provider is "aws" but the "aws:" section is missing/,
    );
  });
});
