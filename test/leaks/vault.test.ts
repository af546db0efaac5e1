/**
 * No secret leaks with the vault provider: the replica that writes the cold ciphertexts
 * authenticates with a token file, the plugin under test with AppRole (role_id and secret_id
 * files), so both credential paths and the tokens AppRole logins return are covered. See
 * ./scenario.ts.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { VaultProvider } from '../../src/kek/vault/provider.js';
import { VaultHarness } from '../fakes/vault-transit/harness.js';
import type { Fault } from '../fakes/vault-transit/server.js';
import { expectNoLeaks, runLeakScenario } from './scenario.js';

let h: VaultHarness;
let fileToken = '';
const ROLE_ID = randomUUID();
const SECRET_ID = randomUUID();

beforeAll(async () => {
  h = await new VaultHarness().start();
  h.fake.createKey('kek');
  fileToken = h.fake.issueToken({ ttlSeconds: 3600 });
  h.fake.addAppRole(ROLE_ID, SECRET_ID, { ttlSeconds: 3600 });
});
afterAll(async () => {
  await h.close();
});

function persistent(name: string, fault: Fault) {
  return {
    name,
    inject: () => {
      for (let i = 0; i < 10_000; i += 1) h.fake.faults.push({ ...fault });
    },
    clear: () => {
      h.fake.faults = [];
    },
  };
}

test('vault: no seed, DEK, wrapped DEK, token, role_id or secret_id in logs, metrics, health pages or errors', async () => {
  let configs = 0;
  const report = await runLeakScenario({
    config: () => {
      configs += 1;
      const auth =
        configs === 1
          ? { method: 'token', tokenFile: h.file('token', `${fileToken}\n`) }
          : {
              method: 'approle',
              roleIdFile: h.file('role-id', ROLE_ID),
              secretIdFile: h.file('secret-id', `${SECRET_ID}\n`),
            };
      return { provider: 'vault', vault: { address: h.url, keyName: 'kek', auth } };
    },
    proto: VaultProvider.prototype,
    rotateKek: () => {
      h.fake.rotateKey('kek');
    },
    faults: [
      persistent('throttled', { status: 429, errors: ['rate limit quota exceeded'] }),
      persistent('internal error', { status: 500, errors: ['internal error'] }),
      persistent('permission denied', { status: 403, errors: ['permission denied'] }),
      persistent('outage (hang)', { hang: true }),
      persistent('connection dropped', { drop: true }),
      {
        name: 'sealed',
        inject: () => {
          h.fake.sealed = true;
        },
        clear: () => {
          h.fake.sealed = false;
        },
      },
      {
        name: 'deletion allowed (key going away)',
        inject: () => h.fake.configureKey('kek', { deletionAllowed: true }),
        clear: () => h.fake.configureKey('kek', { deletionAllowed: false }),
      },
    ],
    secrets: () => [
      ['token file', fileToken],
      ['AppRole role_id', ROLE_ID],
      ['AppRole secret_id', SECRET_ID],
      ...h.fake.issuedTokens().map((t, i): [string, string] => [`issued token #${i}`, t]),
      ...[...h.fake.key('kek').versions.values()].map((v, i): [string, Buffer] => [
        `transit key v${i + 1}`,
        v.material,
      ]),
    ],
  });
  expect(configs).toBeGreaterThanOrEqual(2);
  expect(h.fake.count('auth/approle/login')).toBeGreaterThan(0);
  expect(h.fake.requests.some((r) => r.token === fileToken)).toBe(true);
  expectNoLeaks(report, 7);
}, 60_000);
