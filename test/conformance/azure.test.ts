/**
 * The apiserver-emulation conformance suite against real plugin processes
 * (`node dist/cli/main.js serve --provider azure`) pointed at the HTTPS Key Vault fake, with a real
 * client-secret credential against the fake Entra ID.
 */
import { afterAll, beforeAll } from '@jest/globals';
import { makeTestPki } from '../fakes/azure-keyvault/certs.js';
import { FakeEntraId } from '../fakes/azure-keyvault/entra.js';
import { TempDir } from '../fakes/azure-keyvault/harness.js';
import { FakeKeyVault } from '../fakes/azure-keyvault/server.js';
import { defineApiserverConformance, pluginStarter } from './suite.js';

const TENANT = '00000000-0000-0000-0000-0000000000aa';
const CLIENT = '00000000-0000-0000-0000-00000000c11e';
const SECRET = `conformance-secret-${process.pid}-${Date.now()}`;

const dir = new TempDir();
const pki = makeTestPki();
const entra = new FakeEntraId(TENANT, pki);
const vault = new FakeKeyVault({
  pki,
  tenantId: TENANT,
  acceptToken: (t) => entra.isIssued(t, 'https://vault.azure.net'),
});
const caFile = dir.file('ca.crt', pki.ca, 0o644);
const secretFile = dir.file('client-secret', SECRET);

beforeAll(async () => {
  entra.addClientSecret(CLIENT, SECRET);
  await entra.listen();
  await vault.listen();
  vault.createKey('kek');
  vault.createKey('other');
});

afterAll(async () => {
  await vault.close();
  await entra.close();
  dir.remove();
});

const start = pluginStarter('azure', dir.path, { readyTimeoutMs: 20_000 });

function startWith(keyName: string, statusVersion: 'v2' | 'v2beta1') {
  return start(
    [
      ...['--provider', 'azure', '--azure-vault-url', vault.url, '--azure-key-name', keyName],
      ...['--azure-credential', 'client-secret', '--azure-tenant-id', TENANT, '--azure-client-id', CLIENT],
      ...[
        '--azure-client-secret-file',
        secretFile,
        '--azure-authority-host',
        entra.url,
        '--azure-ca-file',
        caFile,
      ],
      '--azure-disable-challenge-resource-verification',
    ],
    statusVersion,
  );
}

defineApiserverConformance({
  name: 'azure',
  start: ({ statusVersion }) => startWith('kek', statusVersion),
  startOtherKek: () => startWith('other', 'v2'),
  secrets: () => [SECRET],
});
