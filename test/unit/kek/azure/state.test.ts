/** Azure provider: key attributes → KeyState (src/kek/azure/state.ts). */
import { describe, expect, it } from '@jest/globals';

import {
  isPurgeable,
  lacksPurgeProtection,
  stateOf,
  type VersionFacts,
} from '../../../../src/kek/azure/state.js';

const base: VersionFacts = {
  version: 'abc',
  kid: 'https://v.vault.azure.net/keys/k/abc',
  keyType: 'RSA',
  enabled: true,
  createdOn: new Date('2026-01-01T00:00:00Z'),
};
const now = new Date('2026-06-01T00:00:00Z');

describe('stateOf', () => {
  it.each<[Partial<VersionFacts>, string]>([
    [{}, 'enabled'],
    [{ enabled: false }, 'disabled'],
    [{ expiresOn: new Date('2026-05-31T23:59:59Z') }, 'expired'],
    [{ expiresOn: new Date('2026-06-01T00:00:00Z') }, 'expired'],
    [{ expiresOn: new Date('2026-06-01T00:00:01Z') }, 'enabled'],
    [{ notBefore: new Date('2026-06-01T00:00:01Z') }, 'not_yet_valid'],
    [{ notBefore: new Date('2026-05-01T00:00:00Z') }, 'enabled'],
    [
      { deletedOn: new Date('2026-05-30T00:00:00Z'), scheduledPurgeDate: new Date('2026-08-28T00:00:00Z') },
      'pending_deletion',
    ],
    [{ enabled: false, deletedOn: new Date('2026-05-30T00:00:00Z') }, 'pending_deletion'],
    [{ enabled: false, expiresOn: new Date('2026-01-02T00:00:00Z') }, 'disabled'],
  ])('%j → %s', (attrs, state) => {
    const v = stateOf({ ...base, ...attrs }, now);
    expect(v.state).toBe(state);
    if (state !== 'enabled') expect(v.detail).toContain('abc');
  });

  it('recovery levels', () => {
    expect(isPurgeable('Purgeable')).toBe(true);
    expect(isPurgeable('Recoverable+Purgeable')).toBe(false);
    expect(lacksPurgeProtection('Recoverable+Purgeable')).toBe(true);
    expect(lacksPurgeProtection('Recoverable')).toBe(false);
    expect(lacksPurgeProtection('CustomizedRecoverable+ProtectedSubscription')).toBe(false);
  });
});
