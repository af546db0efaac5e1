/**
 * Runs the Cloud KMS fake on its own:
 *
 *   npm run fake:gcp -- [--port 9443] [--host 127.0.0.1] [--key projects/P/locations/L/keyRings/R/cryptoKeys/K]
 *
 * and prints how to point the plugin at it. While it runs, SIGUSR2 adds a new version and makes it
 * the primary (a rotation), so the plugin's rotation watcher can be watched by hand.
 */
import { parseArgs } from 'node:util';
import { FakeGcpKms } from './server.js';

const DEFAULT_KEY = 'projects/fake-project/locations/global/keyRings/k8s/cryptoKeys/etcd';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      key: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: npm run fake:gcp -- [--port P] [--host 127.0.0.1] [--key projects/P/locations/L/keyRings/R/cryptoKeys/K ...]\n',
    );
    return;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--port: expected 0-65535, got ${values.port}`);
  const fake = await FakeGcpKms.start({ host: values.host, port });
  const keys = values.key && values.key.length > 0 ? values.key : [DEFAULT_KEY];
  for (const key of keys) fake.createKey(key);

  const out = process.stdout;
  out.write(`fake Cloud KMS (gRPC, plaintext) listening on ${fake.endpoint}\n`);
  for (const key of keys) out.write(`  CryptoKey ${key} (version 1, ENABLED, primary)\n`);
  out.write('\nPoint the plugin at it:\n');
  out.write(
    `  node dist/cli/main.js serve --provider gcp --gcp-key-name ${keys[0]} --gcp-endpoint ${fake.endpoint} --gcp-insecure --listen unix:///tmp/kms-gcp.sock\n`,
  );
  out.write('or in the config file:\n');
  out.write(
    `  provider: gcp\n  gcp:\n    keyName: ${keys[0]}\n    endpoint: "${fake.endpoint}"\n    insecure: true\n`,
  );
  out.write(`\nkill -USR2 ${process.pid} rotates: a new version becomes primary. Ctrl-C stops.\n`);

  process.on('SIGUSR2', () => {
    for (const key of keys) {
      const v = fake.addVersion(key, { primary: true });
      out.write(`rotated ${key}: primary is now version ${v.id}\n`);
    }
  });
  const stop = (): void => {
    void fake.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(`fake:gcp: ${(err as Error).message}`);
  process.exit(1);
});
