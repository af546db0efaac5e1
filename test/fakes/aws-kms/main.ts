/**
 * Runs the AWS KMS fake on its own:
 *
 *   npm run fake:aws -- --port 4599 [--region us-east-1] [--alias alias/k8s-kek] [--host 127.0.0.1]
 *                       [--latency-ms 0] [--omit-current-key-material-id]
 *
 * Prints the endpoint, a ready-made key ARN and an alias, and the environment for pointing the
 * plugin at it (any static credentials work; the fake checks only the SigV4 scope). Ctrl-C stops it.
 */
import { FakeAwsKms } from './fake.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

async function main(): Promise<void> {
  const port = Number(arg('port', '0'));
  const region = arg('region', 'us-east-1');
  const alias = arg('alias', 'alias/k8s-kms-plugin');
  const host = arg('host', '127.0.0.1');
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--port: expected 0-65535, got ${port}`);
  const latencyMs = Number(arg('latency-ms', '0'));
  if (!Number.isFinite(latencyMs) || latencyMs < 0)
    throw new Error(`--latency-ms: expected a number >= 0, got ${latencyMs}`);
  const fake = new FakeAwsKms({
    region,
    omitCurrentKeyMaterialId: process.argv.includes('--omit-current-key-material-id'),
  });
  fake.latencyMs = latencyMs;
  const url = await fake.listen(port, host);
  const key = fake.createKey({ description: 'k8s-kms-plugin fake KEK' });
  fake.setAlias(alias, key.keyId);
  const lines = [
    `fake AWS KMS listening on ${url}`,
    `region:    ${region}`,
    `key ARN:   ${key.arn}`,
    `alias:     ${alias}`,
    '',
    'run the plugin against it:',
    `  AWS_ACCESS_KEY_ID=AKIDFAKE AWS_SECRET_ACCESS_KEY=fake AWS_EC2_METADATA_DISABLED=true \\`,
    `  node dist/cli/main.js serve --provider aws --aws-key-id ${key.arn} --aws-endpoint ${url} --listen unix:///tmp/aws-kms.sock`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  const stop = (): void => {
    void fake.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
