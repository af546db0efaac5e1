/**
 * Real @azure/identity credentials, built from the `azure:` config, against the fake Entra ID; the
 * Key Vault fake accepts only tokens the fake Entra ID issued for the vault scope.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { timeoutSignal } from '../../src/deadline.js';
import { AzureKekProvider } from '../../src/kek/azure/index.js';
import type { AzureConfigInput } from '../../src/config/providers/azure.js';
import { makeTestPki } from '../fakes/azure-keyvault/certs.js';
import { FakeEntraId } from '../fakes/azure-keyvault/entra.js';
import { FakeKeyVault } from '../fakes/azure-keyvault/server.js';
import {
  captureDeps,
  fakeConfig,
  metricValue,
  TempDir,
  writeCa,
  type Captured,
} from '../fakes/azure-keyvault/harness.js';

const TENANT = '11111111-2222-3333-4444-555555555555';
const APP = 'aaaaaaaa-0000-0000-0000-000000000001';
const SECRET = `s3cr3t~${randomBytes(12).toString('base64url')}`;
const WI_APP = 'aaaaaaaa-0000-0000-0000-000000000002';
const SA_TOKEN = `eyJhbGciOiJSUzI1NiJ9.${randomBytes(24).toString('base64url')}.${randomBytes(24).toString('base64url')}`;

const pki = makeTestPki();
const dir = new TempDir();
const caFile = writeCa(dir, pki);
const entra = new FakeEntraId(TENANT, pki);
const vault = new FakeKeyVault({
  pki,
  tenantId: TENANT,
  acceptToken: (t) => entra.isIssued(t, 'https://vault.azure.net'),
});
const providers: AzureKekProvider[] = [];
const captures: Captured[] = [];
const messages: string[] = [];

function make(over: Partial<AzureConfigInput>) {
  const cap = captureDeps();
  captures.push(cap);
  const provider = new AzureKekProvider(
    fakeConfig(vault.url, caFile, { authorityHost: entra.url, ...over }),
    cap.deps,
    {
      retry: { baseBackoffMs: 10, maxBackoffMs: 40 },
    },
  );
  providers.push(provider);
  return { provider, cap };
}

async function roundTrip(provider: AzureKekProvider): Promise<void> {
  const info = await provider.currentVersion(timeoutSignal(10_000));
  const dek = randomBytes(32);
  const w = await provider.wrap(dek, info, timeoutSignal(5000));
  expect((await provider.unwrap(w.wrapped, w.ref, timeoutSignal(5000))).equals(dek)).toBe(true);
}

beforeAll(async () => {
  await entra.listen();
  await vault.listen();
  vault.createKey('kek');
  entra.addClientSecret(APP, SECRET);
  entra.addFederatedCredential(WI_APP, SA_TOKEN);
});

afterEach(async () => {
  while (providers.length) await providers.pop()?.close();
});

afterAll(async () => {
  await vault.close();
  await entra.close();
  dir.remove();
});

describe('Entra ID credentials against the fakes', () => {
  it('client secret from a file', async () => {
    const secretFile = dir.file('client-secret', `${SECRET}\n`);
    const { provider, cap } = make({
      credential: 'client-secret',
      tenantId: TENANT,
      clientId: APP,
      clientSecretFile: secretFile,
    });
    const before = entra.requests.length;
    await roundTrip(provider);
    const reqs = entra.requests.slice(before);
    expect(reqs.length).toBeGreaterThanOrEqual(1);
    expect(reqs[0]).toMatchObject({
      tenant: TENANT,
      clientId: APP,
      grant: 'client_secret',
      scope: 'https://vault.azure.net/.default',
      status: 200,
    });
    const ttl = await metricValue(cap.metrics, 'kms_plugin_credential_ttl_seconds', { provider: 'azure' });
    expect(ttl).toBeGreaterThan(3500);
    expect(ttl).toBeLessThanOrEqual(3601); // MSAL rounds the expiry
    expect(
      await metricValue(cap.metrics, 'kms_plugin_credential_renewals_total', {
        provider: 'azure',
        outcome: 'ok',
      }),
    ).toBeGreaterThanOrEqual(1);
  });

  it('AZURE_AUTHORITY_HOST alone behaves like --azure-authority-host: custom authority, no instance discovery (issue 12.6)', async () => {
    const secretFile = dir.file('client-secret-env', `${SECRET}\n`);
    const saved = process.env.AZURE_AUTHORITY_HOST;
    process.env.AZURE_AUTHORITY_HOST = entra.url;
    try {
      const cap = captureDeps();
      captures.push(cap);
      const provider = new AzureKekProvider(
        fakeConfig(vault.url, caFile, {
          credential: 'client-secret',
          tenantId: TENANT,
          clientId: APP,
          clientSecretFile: secretFile,
        }),
        cap.deps,
        { retry: { baseBackoffMs: 10, maxBackoffMs: 40 } },
      );
      providers.push(provider);
      const before = entra.requests.length;
      await roundTrip(provider);
      expect(entra.requests.slice(before)[0]).toMatchObject({ tenant: TENANT, clientId: APP, status: 200 });
    } finally {
      if (saved === undefined) delete process.env.AZURE_AUTHORITY_HOST;
      else process.env.AZURE_AUTHORITY_HOST = saved;
    }
  });

  it('workload identity (federated token file)', async () => {
    const tokenFile = dir.file('sa-token', SA_TOKEN);
    const { provider } = make({
      credential: 'workload-identity',
      tenantId: TENANT,
      clientId: WI_APP,
      federatedTokenFile: tokenFile,
    });
    const before = entra.requests.length;
    await roundTrip(provider);
    expect(entra.requests.slice(before)[0]).toMatchObject({
      clientId: WI_APP,
      grant: 'client_assertion',
      status: 200,
    });
  });

  it('azure.json with a service principal (self-managed static pod)', async () => {
    const file = dir.file(
      'azure.json',
      JSON.stringify({
        cloud: 'AzurePublicCloud',
        tenantId: TENANT,
        aadClientId: APP,
        aadClientSecret: SECRET,
        subscriptionId: 'x',
      }),
    );
    const { provider } = make({ cloudConfigFile: file });
    const before = entra.requests.length;
    await roundTrip(provider);
    expect(entra.requests.slice(before)[0]).toMatchObject({
      clientId: APP,
      grant: 'client_secret',
      status: 200,
    });
    expect(provider.description).toContain(`${vault.url}/keys/kek`);
  });

  it('azure.json with federated workload identity', async () => {
    const tokenFile = dir.file('sa-token-2', SA_TOKEN);
    const file = dir.file(
      'azure-wi.json',
      JSON.stringify({
        tenantId: TENANT,
        aadClientId: WI_APP,
        useFederatedWorkloadIdentityExtension: true,
        aadFederatedTokenFile: tokenFile,
      }),
    );
    const { provider } = make({ cloudConfigFile: file });
    await roundTrip(provider);
  });

  it('DefaultAzureCredential picks up the environment service principal', async () => {
    const saved = { ...process.env };
    process.env.AZURE_TENANT_ID = TENANT;
    process.env.AZURE_CLIENT_ID = APP;
    process.env.AZURE_CLIENT_SECRET = SECRET;
    process.env.AZURE_AUTHORITY_HOST = entra.url;
    try {
      const { provider } = make({ credential: 'default' });
      const before = entra.requests.length;
      await roundTrip(provider);
      expect(entra.requests.slice(before)[0]).toMatchObject({
        clientId: APP,
        grant: 'client_secret',
        status: 200,
      });
    } finally {
      for (const k of ['AZURE_TENANT_ID', 'AZURE_CLIENT_ID', 'AZURE_CLIENT_SECRET', 'AZURE_AUTHORITY_HOST']) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  });

  it('a rejected secret is permission_denied, not retried forever, and the secret never appears', async () => {
    const wrong = `wrong~${randomBytes(12).toString('base64url')}`;
    const secretFile = dir.file('bad-secret', wrong);
    const { provider, cap } = make({
      credential: 'client-secret',
      tenantId: TENANT,
      clientId: APP,
      clientSecretFile: secretFile,
    });
    let err: (Error & { kind?: string }) | undefined;
    try {
      await provider.currentVersion(timeoutSignal(10_000));
    } catch (e) {
      err = e as Error & { kind?: string };
    }
    expect(err?.kind).toBe('permission_denied');
    messages.push(String(err?.message), String((err?.cause as Error | undefined)?.message));
    expect(err?.message).toMatch(/Entra ID refused the credential/);
    expect(err?.message).toMatch(/AADSTS7000215/);
    const text = [...messages, ...cap.lines].join('\n');
    expect(text).not.toContain(wrong);
    expect(
      await metricValue(cap.metrics, 'kms_plugin_credential_renewals_total', {
        provider: 'azure',
        outcome: 'error',
      }),
    ).toBeGreaterThanOrEqual(1);
  });

  it('no client secret, service-account token or access token in logs or errors', () => {
    const text = [...messages, ...captures.flatMap((c) => c.lines)].join('\n');
    expect(captures.length).toBeGreaterThanOrEqual(6);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(SA_TOKEN);
    expect(text).not.toMatch(/fake-at-/);
  });
});
