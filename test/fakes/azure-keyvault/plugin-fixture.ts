/**
 * A Key Vault fake plus a fake Entra ID with one client-secret app, and the plugin config that uses
 * them: for tests that run the whole plugin against Azure.
 */
import { randomBytes } from 'node:crypto';
import { makeTestPki } from './certs.js';
import { FakeEntraId } from './entra.js';
import { TempDir } from './harness.js';
import { FakeKeyVault } from './server.js';

export class AzurePluginFixture {
  readonly tenant = '00000000-0000-0000-0000-0000000000bb';
  readonly client = '00000000-0000-0000-0000-00000000cafe';
  private readonly secret = `Az~${randomBytes(18).toString('base64url')}`;
  private readonly pki = makeTestPki();
  private readonly files = new TempDir();
  readonly entra = new FakeEntraId(this.tenant, this.pki);
  readonly vault = new FakeKeyVault({
    pki: this.pki,
    tenantId: this.tenant,
    acceptToken: (t) => this.entra.isIssued(t, 'https://vault.azure.net'),
  });

  async start(keyName = 'kek'): Promise<this> {
    this.entra.addClientSecret(this.client, this.secret);
    await this.entra.listen();
    await this.vault.listen();
    this.vault.createKey(keyName);
    return this;
  }

  /** `{ provider: 'azure', azure: {...} }` for validateConfig / startInProcess. */
  config(keyName = 'kek'): Record<string, unknown> {
    return {
      provider: 'azure',
      azure: {
        vaultUrl: this.vault.url,
        keyName,
        credential: 'client-secret',
        tenantId: this.tenant,
        clientId: this.client,
        clientSecretFile: this.files.file('client-secret', `${this.secret}\n`),
        authorityHost: this.entra.url,
        caFile: this.files.file('ca.crt', this.pki.ca, 0o644),
        disableChallengeResourceVerification: true,
      },
    };
  }

  async close(): Promise<void> {
    await this.vault.close();
    await this.entra.close();
    this.files.remove();
  }
}
