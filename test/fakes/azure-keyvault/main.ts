/**
 * Runs the Key Vault fake (and a fake Entra ID) on its own:
 *
 *   npm run fake:azure -- --port 8443 [--entra-port 8444] [--dir /tmp/azure-fake] [--hsm] [--key kek]
 *
 * It writes the test CA and a client-secret file under --dir and prints the plugin flags (one JSON
 * line on stdout) needed to point `serve` at it, e.g.
 *
 *   node dist/cli/main.js serve --provider azure $(jq -r '.flags | join(" ")' < line)
 *
 * Commands on stdin (one per line): `rotate`, `disable`, `enable`, `expire`, `delete`, `recover`,
 * `fault <status> [retryAfter]`, `hang`, `status`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { makeTestPki } from './certs.js';
import { FakeEntraId } from './entra.js';
import { FakeKeyVault } from './server.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const port = Number(arg('port') ?? 0);
  const entraPort = Number(arg('entra-port') ?? 0);
  const dir = arg('dir') ?? join(tmpdir(), `azure-fake-${process.pid}`);
  const keyName = arg('key') ?? 'kek';
  const hsm = process.argv.includes('--hsm');
  mkdirSync(dir, { recursive: true, mode: 0o700 });

  const tenant = '00000000-0000-0000-0000-0000000000aa';
  const clientId = '00000000-0000-0000-0000-00000000c11e';
  const secret = `fake-secret-${process.pid}-${Date.now()}`;
  const pki = makeTestPki();
  const entra = new FakeEntraId(tenant, pki);
  entra.addClientSecret(clientId, secret);
  const vault = new FakeKeyVault({
    pki,
    tenantId: tenant,
    managedHsm: hsm,
    acceptToken: (t) => entra.isIssued(t),
  });
  const entraUrl = await entra.listen(entraPort);
  const vaultUrl = await vault.listen(port);
  vault.createKey(keyName, { kty: hsm ? 'oct-HSM' : 'RSA' });

  const caFile = join(dir, 'ca.crt');
  const secretFile = join(dir, 'client-secret');
  writeFileSync(caFile, pki.ca, { mode: 0o644 });
  writeFileSync(secretFile, secret, { mode: 0o600 });

  const flags = [
    '--provider azure',
    `--azure-vault-url ${vaultUrl}`,
    `--azure-key-name ${keyName}`,
    '--azure-credential client-secret',
    `--azure-tenant-id ${tenant}`,
    `--azure-client-id ${clientId}`,
    `--azure-client-secret-file ${secretFile}`,
    `--azure-authority-host ${entraUrl}`,
    `--azure-ca-file ${caFile}`,
    '--azure-disable-challenge-resource-verification',
  ];
  process.stdout.write(
    `${JSON.stringify({ vaultUrl, entraUrl, caFile, secretFile, keyName, version: vault.latestVersion(keyName), flags })}\n`,
  );

  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    const [cmd, a, b] = line.trim().split(/\s+/);
    try {
      switch (cmd) {
        case 'rotate':
          console.error(`rotated: ${vault.rotateKey(keyName)}`);
          break;
        case 'disable':
          vault.setAttributes(keyName, undefined, { enabled: false });
          break;
        case 'enable':
          vault.setAttributes(keyName, undefined, { enabled: true, expiresOn: null });
          break;
        case 'expire':
          vault.setAttributes(keyName, undefined, { expiresOn: new Date(Date.now() - 1000) });
          break;
        case 'delete':
          vault.deleteKey(keyName);
          break;
        case 'recover':
          vault.recoverKey(keyName);
          break;
        case 'fault':
          vault.faults.push({ status: Number(a), ...(b ? { retryAfter: b } : {}) });
          break;
        case 'hang':
          vault.faults.push({ hang: true });
          break;
        case 'status':
          console.error(
            JSON.stringify({
              version: vault.latestVersion(keyName),
              requests: vault.seen.length,
              tokens: entra.issuedCount,
            }),
          );
          break;
        case '':
        case undefined:
          break;
        default:
          console.error(`unknown command: ${cmd}`);
      }
    } catch (err) {
      console.error((err as Error).message);
    }
  });

  const stop = async (): Promise<void> => {
    rl.close();
    await Promise.all([vault.close(), entra.close()]);
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
