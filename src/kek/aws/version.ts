/**
 * Resolves the key's current version with one DescribeKey per probe: key ARN (an alias is resolved
 * to its target here), state, creation time and `CurrentKeyMaterialId` (the material new Encrypts
 * use). Only when DescribeKey does not return `CurrentKeyMaterialId` (older KMS endpoints, keys
 * whose origin has no material id) does the probe also call ListKeyRotations (the newest rotation
 * = the current material).
 */
import {
  DescribeKeyCommand,
  ListKeyRotationsCommand,
  type DescribeKeyCommandOutput,
  type KeyMetadata,
  type ListKeyRotationsCommandOutput,
} from '@aws-sdk/client-kms';
import { CorruptError, InvalidInputError, PluginError } from '../errors.js';

/** Sends one command through RemoteCaller (deadline, retries, metrics). */
export type Send = <T>(operation: string, command: unknown) => Promise<T>;

export interface DescribedKey {
  arn: string;
  keyState?: string;
  enabled?: boolean;
  creationDate: Date;
  deletionDate?: Date;
  /** DescribeKey's CurrentKeyMaterialId, when AWS returns it (a non-secret identifier). */
  currentKeyMaterialId?: string;
}

export async function describeKey(send: Send, keyId: string): Promise<DescribedKey> {
  const out = await send<DescribeKeyCommandOutput>('DescribeKey', new DescribeKeyCommand({ KeyId: keyId }));
  const meta: KeyMetadata | undefined = out.KeyMetadata;
  if (!meta?.Arn || !(meta.CreationDate instanceof Date) || Number.isNaN(meta.CreationDate.getTime())) {
    throw new CorruptError(`aws DescribeKey ${keyId}: the answer lacks the key ARN or creation date`);
  }
  if (meta.KeyManager === 'AWS') {
    throw new InvalidInputError(
      `aws key ${meta.Arn} is an AWS managed key, which only AWS services can use; create a customer managed symmetric key and set aws.keyId to it`,
    );
  }
  if (
    (meta.KeyUsage && meta.KeyUsage !== 'ENCRYPT_DECRYPT') ||
    (meta.KeySpec && meta.KeySpec !== 'SYMMETRIC_DEFAULT')
  ) {
    throw new InvalidInputError(
      `aws key ${meta.Arn} is ${meta.KeySpec ?? '?'}/${meta.KeyUsage ?? '?'}; the plugin needs a symmetric encryption key (KeySpec SYMMETRIC_DEFAULT, KeyUsage ENCRYPT_DECRYPT)`,
    );
  }
  return {
    arn: meta.Arn,
    keyState: meta.KeyState,
    enabled: meta.Enabled,
    creationDate: meta.CreationDate,
    deletionDate: meta.DeletionDate,
    ...(typeof meta.CurrentKeyMaterialId === 'string' && meta.CurrentKeyMaterialId !== ''
      ? { currentKeyMaterialId: meta.CurrentKeyMaterialId }
      : {}),
  };
}

/** Pages we are willing to read; KMS keeps at most a few dozen rotations per key. */
const MAX_PAGES = 20;

/**
 * The date of the newest rotation, or undefined if the key was never rotated (or cannot be: keys
 * in custom key stores answer UnsupportedOperationException).
 */
export async function latestRotation(send: Send, keyArn: string): Promise<Date | undefined> {
  let latest: Date | undefined;
  let marker: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    let out: ListKeyRotationsCommandOutput;
    try {
      out = await send<ListKeyRotationsCommandOutput>(
        'ListKeyRotations',
        new ListKeyRotationsCommand({ KeyId: keyArn, Limit: 1000, ...(marker ? { Marker: marker } : {}) }),
      );
    } catch (err) {
      if (
        err instanceof PluginError &&
        err.kind === 'invalid_input' &&
        /UnsupportedOperation/.test(err.message)
      )
        return undefined;
      throw err;
    }
    for (const r of out.Rotations ?? []) {
      if (r.RotationDate instanceof Date && !Number.isNaN(r.RotationDate.getTime())) {
        if (!latest || r.RotationDate.getTime() > latest.getTime()) latest = r.RotationDate;
      }
    }
    if (!out.Truncated || !out.NextMarker) return latest;
    marker = out.NextMarker;
  }
  throw new CorruptError(`aws ListKeyRotations ${keyArn}: more than ${MAX_PAGES} pages of rotations`);
}
