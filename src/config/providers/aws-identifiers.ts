/**
 * Parsing of AWS KMS key identifiers, with no SDK import: the config schema validates with it and
 * the AWS provider (src/kek/aws) uses the parsed form, so it lives under config (imports point down).
 *
 * Accepted forms (the same ones KMS accepts for `KeyId`):
 *   - key ARN       arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab
 *   - key id        1234abcd-12ab-34cd-56ef-1234567890ab   (or a multi-Region id: mrk-<32 hex>)
 *   - alias name    alias/my-kek
 *   - alias ARN     arn:aws:kms:us-east-1:111122223333:alias/my-kek
 */

export type KeyIdentifierKind = 'key-arn' | 'key-id' | 'alias-name' | 'alias-arn';

export interface KeyIdentifier {
  kind: KeyIdentifierKind;
  /** The text as configured (trimmed). */
  raw: string;
  /** Region carried by an ARN. */
  region?: string;
  /** Account carried by an ARN. */
  account?: string;
  /** Partition carried by an ARN (aws, aws-cn, aws-us-gov, ...). */
  partition?: string;
  /** `alias/<name>` for the alias forms. */
  aliasName?: string;
  /** The bare key id (UUID or mrk-...) for the key forms. */
  keyId?: string;
}

const KEY_ID = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$/;
const ALIAS_NAME = /^alias\/[A-Za-z0-9/_-]{1,250}$/;
const ARN = /^arn:(aws[a-z-]*):kms:([a-z]{2}(?:-[a-z0-9]+)+-\d+):(\d{12}):(key|alias)\/(.+)$/;
const REGION = /^[a-z]{2}(?:-[a-z0-9]+)+-\d+$/;
const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;

export const KEY_ID_FORMS =
  'a key ARN (arn:aws:kms:REGION:ACCOUNT:key/KEY-ID), a key id (UUID or mrk-...), an alias (alias/NAME) or an alias ARN (arn:aws:kms:REGION:ACCOUNT:alias/NAME)';

/** Parses a KMS key identifier; returns an explanation instead when it is malformed. */
export function parseKeyIdentifier(text: string): KeyIdentifier | { error: string } {
  const raw = text.trim();
  if (raw === '') return { error: `must not be empty: set ${KEY_ID_FORMS}` };
  if (raw.startsWith('arn:')) {
    const m = ARN.exec(raw);
    if (!m) {
      return {
        error: `"${raw}" is not a valid KMS ARN: expected arn:PARTITION:kms:REGION:ACCOUNT(12 digits):key/KEY-ID or ...:alias/NAME`,
      };
    }
    const [, partition, region, account, type, rest] = m;
    if (type === 'key') {
      if (!KEY_ID.test(rest)) {
        return {
          error: `"${raw}": the part after "key/" must be a key id (a lowercase UUID or mrk-<32 hex>)`,
        };
      }
      return { kind: 'key-arn', raw, region, account, partition, keyId: rest };
    }
    const aliasName = `alias/${rest}`;
    const aliasError = checkAliasName(aliasName);
    if (aliasError) return { error: `"${raw}": ${aliasError}` };
    return { kind: 'alias-arn', raw, region, account, partition, aliasName };
  }
  if (raw.startsWith('alias/')) {
    const aliasError = checkAliasName(raw);
    if (aliasError) return { error: `"${raw}": ${aliasError}` };
    return { kind: 'alias-name', raw, aliasName: raw };
  }
  if (KEY_ID.test(raw)) return { kind: 'key-id', raw, keyId: raw };
  return { error: `"${raw}" is not a KMS key identifier: use ${KEY_ID_FORMS}` };
}

function checkAliasName(name: string): string | undefined {
  if (!ALIAS_NAME.test(name)) {
    return 'an alias is "alias/" followed by 1-250 letters, digits, "/", "_" or "-"';
  }
  if (name.startsWith('alias/aws/')) {
    return 'alias/aws/* names an AWS managed key, which only AWS services can use; create a customer managed symmetric key and use its alias';
  }
  return undefined;
}

export function isRegion(text: string): boolean {
  return REGION.test(text);
}

export function isRoleArn(text: string): boolean {
  return ROLE_ARN.test(text);
}

/** Parses a key ARN (the form KMS returns); undefined for anything else. */
export function parseKeyArn(
  arn: string,
): { partition: string; region: string; account: string; keyId: string } | undefined {
  const parsed = parseKeyIdentifier(arn);
  if ('error' in parsed || parsed.kind !== 'key-arn') return undefined;
  return {
    partition: parsed.partition!,
    region: parsed.region!,
    account: parsed.account!,
    keyId: parsed.keyId!,
  };
}
