/** AWS provider: key metadata → KeyState (src/kek/aws/state.ts). */
import { mapKeyState } from '../../../../src/kek/aws/state.js';

const KEY = '1234abcd-12ab-34cd-56ef-1234567890ab';
const ARN = `arn:aws:kms:eu-west-1:111122223333:key/${KEY}`;

describe('mapKeyState', () => {
  test.each([
    ['Enabled', true, 'enabled'],
    ['Disabled', false, 'disabled'],
    ['PendingDeletion', false, 'pending_deletion'],
    ['PendingReplicaDeletion', false, 'pending_deletion'],
    ['PendingImport', false, 'pending_import'],
    ['Unavailable', false, 'unavailable'],
    ['Creating', false, 'unavailable'],
    ['Updating', true, 'enabled'],
  ] as const)('%s → %s', (aws, enabled, state) => {
    const m = mapKeyState(aws, enabled, ARN);
    expect(m.state).toBe(state);
    if (state === 'enabled') expect(m.detail).toBeUndefined();
    else expect(m.detail).toContain(ARN);
  });

  test('pending deletion names the date and how to cancel', () => {
    const m = mapKeyState('PendingDeletion', false, ARN, new Date('2027-01-02T03:04:05.000Z'));
    expect(m.detail).toContain('2027-01-02T03:04:05.000Z');
    expect(m.detail).toContain(`cancel-key-deletion --key-id ${ARN}`);
  });
});
