/** AWS KMS key identifier parsing (src/config/providers/aws-identifiers.ts). */
import { parseKeyArn, parseKeyIdentifier } from '../../../../src/config/providers/aws-identifiers.js';

const KEY = '1234abcd-12ab-34cd-56ef-1234567890ab';
const ARN = `arn:aws:kms:eu-west-1:111122223333:key/${KEY}`;

describe('parseKeyIdentifier', () => {
  test('the four forms', () => {
    expect(parseKeyIdentifier(ARN)).toMatchObject({
      kind: 'key-arn',
      region: 'eu-west-1',
      account: '111122223333',
      partition: 'aws',
      keyId: KEY,
    });
    expect(parseKeyIdentifier(KEY)).toMatchObject({ kind: 'key-id', keyId: KEY });
    expect(parseKeyIdentifier('alias/k8s/prod_1-a')).toMatchObject({
      kind: 'alias-name',
      aliasName: 'alias/k8s/prod_1-a',
    });
    expect(parseKeyIdentifier('arn:aws-us-gov:kms:us-gov-west-1:111122223333:alias/k8s')).toMatchObject({
      kind: 'alias-arn',
      region: 'us-gov-west-1',
      partition: 'aws-us-gov',
      aliasName: 'alias/k8s',
    });
    expect(
      parseKeyIdentifier('arn:aws-cn:kms:cn-north-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab'),
    ).toMatchObject({
      kind: 'key-arn',
      region: 'cn-north-1',
    });
  });

  test.each([
    '',
    'arn:aws:s3:::bucket',
    `arn:aws:kms:eu-west-1:11112222333:key/${KEY}`,
    'KEY',
    KEY.toUpperCase(),
    'alias/',
    'alias/aws/s3',
  ])('%j is rejected with an explanation', (text) => {
    const r = parseKeyIdentifier(text);
    expect('error' in r && r.error.length > 10).toBe(true);
  });

  test('parseKeyArn accepts only key ARNs', () => {
    expect(parseKeyArn(ARN)).toEqual({
      partition: 'aws',
      region: 'eu-west-1',
      account: '111122223333',
      keyId: KEY,
    });
    expect(parseKeyArn('arn:aws:kms:eu-west-1:111122223333:alias/x')).toBeUndefined();
    expect(parseKeyArn(KEY)).toBeUndefined();
  });
});
