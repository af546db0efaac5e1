/**
 * DescribeKey's KeyState → the plugin's KeyState, with a short operator-facing explanation.
 */
import type { KeyState } from '../types.js';

export interface MappedState {
  state: KeyState;
  detail?: string;
}

export function mapKeyState(
  awsState: string | undefined,
  enabled: boolean | undefined,
  arn: string,
  deletionDate?: Date,
): MappedState {
  switch (awsState) {
    case 'Enabled':
      return { state: 'enabled' };
    case 'Disabled':
      return {
        state: 'disabled',
        detail: `AWS KMS key ${arn} is disabled: no new DEKs can be wrapped and stored ones cannot be unwrapped; re-enable it (aws kms enable-key --key-id ${arn})`,
      };
    case 'PendingDeletion':
    case 'PendingReplicaDeletion': {
      const when =
        deletionDate && !Number.isNaN(deletionDate.getTime()) ? ` on ${deletionDate.toISOString()}` : '';
      return {
        state: 'pending_deletion',
        detail: `AWS KMS key ${arn} is scheduled for deletion${when}: every object encrypted under it becomes unreadable then; cancel it now (aws kms cancel-key-deletion --key-id ${arn}, then aws kms enable-key)`,
      };
    }
    case 'PendingImport':
      return {
        state: 'pending_import',
        detail: `AWS KMS key ${arn} has no usable key material (imported material missing or expired); re-import the same material`,
      };
    case 'Unavailable':
      return {
        state: 'unavailable',
        detail: `AWS KMS key ${arn} is unavailable (its custom key store is disconnected); reconnect the key store`,
      };
    default:
      if (enabled === true) return { state: 'enabled' };
      return {
        state: 'unavailable',
        detail: `AWS KMS key ${arn} is in state ${awsState ?? 'unknown'} and cannot be used now`,
      };
  }
}
