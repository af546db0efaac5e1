/**
 * Runs the fake Vault on its own:
 *
 *   npm run fake:vault -- --port 8200 [--host 127.0.0.1] [--token root] [--key kek]
 *                         [--mount transit] [--namespace ns] [--token-file /tmp/vault-token]
 *                         [--tls-cert server.crt --tls-key server.key [--client-ca ca.crt]]
 *
 * It creates the Transit key, writes the token to --token-file if given, and prints one JSON line
 * with the address to stdout. Stop it with Ctrl-C (SIGINT) or SIGTERM.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { FakeVault } from './server.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '8200' },
    host: { type: 'string', default: '127.0.0.1' },
    token: { type: 'string', default: 'root' },
    'token-file': { type: 'string' },
    key: { type: 'string', default: 'kek' },
    mount: { type: 'string', default: 'transit' },
    namespace: { type: 'string', default: '' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'client-ca': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});

if (values.help) {
  console.error(
    'usage: npm run fake:vault -- --port P [--host H] [--token T] [--token-file F] [--key K] [--mount M] [--namespace NS] [--tls-cert C --tls-key K [--client-ca CA]]',
  );
  process.exit(0);
}

const tls =
  values['tls-cert'] && values['tls-key']
    ? {
        cert: readFileSync(values['tls-cert']),
        key: readFileSync(values['tls-key']),
        clientCa: values['client-ca'] ? readFileSync(values['client-ca']) : undefined,
      }
    : undefined;

const fake = new FakeVault({ rootToken: values.token, tls });
fake.mountTransit(values.mount, values.namespace);
fake.createKey(values.key, { mount: values.mount, namespace: values.namespace });
if (tls?.clientCa) fake.addCertRole('kms-plugin', { namespace: values.namespace });

const url = await fake.listen(Number(values.port), values.host);
if (values['token-file']) writeFileSync(values['token-file'], `${values.token}\n`, { mode: 0o600 });
process.stdout.write(
  `${JSON.stringify({ address: url, key: values.key, mount: values.mount, namespace: values.namespace || undefined, tokenFile: values['token-file'] })}\n`,
);

const stop = (): void => {
  void fake.close().then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
