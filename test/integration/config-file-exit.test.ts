/**
 * Issue 14: a file named in config that cannot be read (CA bundle, client certificate or key,
 * credentials, PIN file) makes `serve` exit 2 with a message naming the field, under every
 * provider that has one (before: exit 2 under Azure, 1 under GCP, Vault and PKCS#11). Spawns
 * dist/cli/main.js as a user runs it; `npm run build` first.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, tempDir } from '../support/plugin-process.js';

const dir = tempDir('kkp-cfgfile-');
afterAll(() => dir.cleanup());

const MISSING = '/nonexistent/kms-plugin/file.pem';
/** A directory where a file is expected: unreadable as a file even for root (EISDIR). */
const A_DIRECTORY = join(dir.path, 'a-directory');
mkdirSync(A_DIRECTORY, { recursive: true });
const GOOD = join(dir.path, 'good.pem');
writeFileSync(GOOD, 'not checked before the unreadable file\n');

const sections: Record<string, (file: string) => string> = {
  'vault.caFile': (f) =>
    `vault:\n  address: https://127.0.0.1:1\n  keyName: kek\n  caFile: ${f}\n  auth:\n    method: token\n    tokenFile: ${GOOD}\n`,
  'vault.tls.certFile': (f) =>
    `vault:\n  address: https://127.0.0.1:1\n  keyName: kek\n  tls:\n    certFile: ${f}\n    keyFile: ${GOOD}\n  auth:\n    method: token\n    tokenFile: ${GOOD}\n`,
  'vault.tls.keyFile': (f) =>
    `vault:\n  address: https://127.0.0.1:1\n  keyName: kek\n  tls:\n    certFile: ${GOOD}\n    keyFile: ${f}\n  auth:\n    method: token\n    tokenFile: ${GOOD}\n`,
  'aws.caFile': (f) =>
    `aws:\n  keyId: arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab\n  region: us-east-1\n  caFile: ${f}\n`,
  'gcp.caFile': (f) =>
    `gcp:\n  keyName: projects/my-project/locations/europe-west1/keyRings/k8s/cryptoKeys/etcd\n  caFile: ${f}\n`,
  'gcp.credentialsFile': (f) =>
    `gcp:\n  keyName: projects/my-project/locations/europe-west1/keyRings/k8s/cryptoKeys/etcd\n  credentialsFile: ${f}\n`,
  'azure.caFile': (f) =>
    `azure:\n  vaultUrl: https://kms-vault.vault.azure.net\n  keyName: kek\n  caFile: ${f}\n`,
  'azure.clientSecretFile': (f) =>
    `azure:\n  vaultUrl: https://kms-vault.vault.azure.net\n  keyName: kek\n  credential: client-secret\n  tenantId: 00000000-0000-0000-0000-000000000001\n  clientId: 00000000-0000-0000-0000-000000000002\n  clientSecretFile: ${f}\n`,
  'azure.clientCertificateFile': (f) =>
    `azure:\n  vaultUrl: https://kms-vault.vault.azure.net\n  keyName: kek\n  credential: client-certificate\n  tenantId: 00000000-0000-0000-0000-000000000001\n  clientId: 00000000-0000-0000-0000-000000000002\n  clientCertificateFile: ${f}\n`,
  'pkcs11.pinFile': (f) =>
    `pkcs11:\n  modulePath: /usr/lib/softhsm/libsofthsm2.so\n  tokenLabel: t\n  keyLabel: k\n  pinFile: ${f}\n`,
};

describe('serve with an unreadable file named in config', () => {
  const cases = Object.keys(sections).flatMap((field) => [
    [field, MISSING, 'ENOENT'],
    [field, A_DIRECTORY, 'EISDIR'],
  ]);
  it.each(cases)(
    '%s = %s: exit 2, naming the field, the path, %s and the fix',
    async (field, file, errno) => {
      const provider = field.split('.')[0];
      const cfg = join(dir.path, `${field}-${errno}.yaml`);
      writeFileSync(
        cfg,
        `provider: ${provider}\nlisten: unix://${join(dir.path, `${field}-${errno}.sock`)}\nhealthAddr: ''\n${sections[field](file)}`,
      );
      const r = await runCli(['serve', '--config', cfg], {}, 30_000);
      expect(r.stderr).toContain(`config: ${field}: cannot read`);
      expect(r.stderr).toContain(`${file} (${errno}); check the path and that the plugin's user can read it`);
      expect(r.code).toBe(2);
    },
  );
});
