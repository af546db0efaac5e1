/** Azure provider: key ids (kids) parsed and compared (src/kek/azure/ids.ts). */
import { describe, expect, it } from '@jest/globals';

import { keyResource, parseKid, sameKey } from '../../../../src/kek/azure/ids.js';

describe('ids', () => {
  it('parses kids and compares keys', () => {
    expect(parseKid('https://V.vault.azure.net/keys/kek/0123abc')).toEqual({
      vaultUrl: 'https://v.vault.azure.net',
      name: 'kek',
      version: '0123abc',
    });
    expect(parseKid('https://v.vault.azure.net/keys/kek')).toEqual({
      vaultUrl: 'https://v.vault.azure.net',
      name: 'kek',
      version: undefined,
    });
    expect(parseKid('https://v.vault.azure.net/secrets/kek/1')).toBeUndefined();
    expect(parseKid('not a url')).toBeUndefined();
    expect(
      sameKey(parseKid('https://v.vault.azure.net:443/keys/KEK')!, 'https://v.vault.azure.net', 'kek'),
    ).toBe(true);
    expect(sameKey(parseKid('https://w.vault.azure.net/keys/kek')!, 'https://v.vault.azure.net', 'kek')).toBe(
      false,
    );
    expect(keyResource('https://v.vault.azure.net', 'kek')).toBe('https://v.vault.azure.net/keys/kek');
  });
});
