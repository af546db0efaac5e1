/**
 * No secret leaks with the azure provider: a client-secret credential read from a file, real
 * tokens from the fake Entra ID, the HTTPS Key Vault fake. See ./scenario.ts.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { AzureKekProvider } from '../../src/kek/azure/provider.js';
import { makeTestPki } from '../fakes/azure-keyvault/certs.js';
import { FakeEntraId } from '../fakes/azure-keyvault/entra.js';
import { TempDir as AzureDir } from '../fakes/azure-keyvault/harness.js';
import { FakeKeyVault, type Fault } from '../fakes/azure-keyvault/server.js';
import { expectNoLeaks, runLeakScenario } from './scenario.js';

const TENANT = '00000000-0000-0000-0000-0000000000aa';
const CLIENT = '00000000-0000-0000-0000-00000000715e';
const SECRET = `Az~${randomBytes(24).toString('base64url')}`;

const pki = makeTestPki();
const files = new AzureDir();
const entra = new FakeEntraId(TENANT, pki);
const tokens = new Set<string>();
const vault = new FakeKeyVault({
  pki,
  tenantId: TENANT,
  acceptToken: (t) => {
    tokens.add(t);
    return entra.isIssued(t, 'https://vault.azure.net');
  },
});

beforeAll(async () => {
  entra.addClientSecret(CLIENT, SECRET);
  await entra.listen();
  await vault.listen();
  vault.createKey('kek');
});
afterAll(async () => {
  await vault.close();
  await entra.close();
  files.remove();
});

/** A fault for every request until cleared. */
function persistent(name: string, fault: Fault) {
  return {
    name,
    inject: () => {
      for (let i = 0; i < 10_000; i += 1) vault.faults.push({ ...fault });
    },
    clear: () => {
      vault.faults.length = 0;
    },
  };
}

test('azure: no seed, DEK, wrapped DEK, client secret or token in logs, metrics, health pages or errors', async () => {
  const report = await runLeakScenario({
    config: () => ({
      provider: 'azure',
      azure: {
        vaultUrl: vault.url,
        keyName: 'kek',
        credential: 'client-secret',
        tenantId: TENANT,
        clientId: CLIENT,
        clientSecretFile: files.file('client-secret', `${SECRET}\n`),
        authorityHost: entra.url,
        caFile: files.file('ca.crt', pki.ca, 0o644),
        disableChallengeResourceVerification: true,
        attemptTimeout: '500ms',
      },
    }),
    proto: AzureKekProvider.prototype,
    rotateKek: () => {
      vault.rotateKey('kek');
    },
    faults: [
      persistent('throttled (Retry-After 30)', { status: 429, code: 'Throttled', retryAfter: '30' }),
      persistent('unavailable', { status: 503, code: 'ServiceUnavailable' }),
      persistent('internal error', { status: 500 }),
      persistent('permission denied', { status: 403, code: 'Forbidden', innerCode: 'ForbiddenByPolicy' }),
      persistent('outage (hang)', { hang: true }),
      persistent('connection reset', { reset: true }),
      {
        name: 'key disabled',
        inject: () => vault.setAttributes('kek', undefined, { enabled: false }),
        clear: () => vault.setAttributes('kek', undefined, { enabled: true }),
      },
    ],
    secrets: () => [
      ['client secret', SECRET],
      ...[...tokens].map((t, i): [string, string] => [`access token #${i}`, t]),
    ],
  });
  expect(tokens.size).toBeGreaterThan(0);
  expectNoLeaks(report, 7);
}, 60_000);
