/**
 * The apiserver-emulation conformance suite against real plugin processes
 * (`node dist/cli/main.js serve --provider vault`) pointed at the wire-level Vault Transit fake,
 * which runs in this test process. Auth is AppRole, so every plugin process logs in, gets a
 * renewable token and uses it; the cross-KEK check uses a second Transit key.
 */
import { afterAll, beforeAll } from '@jest/globals';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FakeVault } from '../fakes/vault-transit/index.js';
import { tempDir } from '../support/plugin-process.js';
import { defineApiserverConformance, pluginStarter } from './suite.js';

const ROLE_ID = 'conformance-role-id';
const SECRET_ID = 'conformance-secret-id-4f7c2a';

const dir = tempDir('kkp-vault-conf-');
const fake = new FakeVault({ rootToken: 'conformance-root-token' });
fake.createKey('k8s-conformance');
fake.createKey('other-kek');
fake.addAppRole(ROLE_ID, SECRET_ID, { ttlSeconds: 600 });
const roleIdFile = join(dir.path, 'role-id');
const secretIdFile = join(dir.path, 'secret-id');
writeFileSync(roleIdFile, ROLE_ID, { mode: 0o600 });
writeFileSync(secretIdFile, SECRET_ID, { mode: 0o600 });

beforeAll(async () => {
  await fake.listen();
});
afterAll(async () => {
  await fake.close();
  dir.cleanup();
});

const start = pluginStarter('vault', dir.path);

function startWith(keyName: string, statusVersion: 'v2' | 'v2beta1') {
  return start(
    [
      ...['--provider', 'vault', '--vault-address', fake.url, '--vault-key-name', keyName],
      ...[
        '--vault-auth-method',
        'approle',
        '--vault-role-id-file',
        roleIdFile,
        '--vault-secret-id-file',
        secretIdFile,
      ],
      ...['--vault-associated-data', 'conformance-cluster'],
    ],
    statusVersion,
  );
}

defineApiserverConformance({
  name: 'vault',
  start: ({ statusVersion }) => startWith('k8s-conformance', statusVersion),
  startOtherKek: () => startWith('other-kek', 'v2'),
  secrets: () => [
    SECRET_ID,
    fake.rootToken,
    ...fake.issuedTokens(),
    ...[...fake.key('k8s-conformance').versions.values()].flatMap((v) => [
      v.material.toString('base64'),
      v.material.toString('hex'),
    ]),
  ],
});
