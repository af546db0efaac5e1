/** Vault provider: scrubbing secrets from Vault's messages (src/kek/vault/http.ts). */
import { scrub } from '../../../../src/kek/vault/http.js';

describe('scrub', () => {
  test('removes given secrets, Vault tokens and JWTs, and caps length', () => {
    const out = scrub(
      'denied hvs.CAESIJ1abcdefghijk and s.abcdefghijklmnop, jwt eyJhbGciOi.eyJzdWIiOi.sig123, secret my-secret-id',
      ['my-secret-id'],
    );
    expect(out).not.toMatch(/hvs\.|s\.abcdef|eyJ|my-secret-id/);
    expect(out.match(/\[redacted\]/g)).toHaveLength(4);
    expect(scrub('x'.repeat(1000)).length).toBeLessThanOrEqual(301);
  });
});
