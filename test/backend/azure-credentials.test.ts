/**
 * Real @azure/identity credentials, built from the `azure:` config, against the fake Entra ID; the
 * Key Vault fake accepts only tokens the fake Entra ID issued for the vault scope.
 * The last block rotates each credential file (client secret, certificate, federated token) mid-run.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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

/*
 * Credential files rotated mid-run: after a rotation the next call fetches a new token with the
 * new file (Entra no longer accepts the old secret / certificate / assertion); a bad new file is
 * logged and counted, and the credential and token already loaded keep working.
 */
const since = (n: number) => entra.requests.slice(n);
const reloads = (cap: Captured, outcome: string) =>
  metricValue(cap.metrics, 'kms_plugin_credential_reloads_total', { provider: 'azure', outcome });

/** Tokens were fetched, all by this application with this grant, all accepted by Entra. */
function expectAll(reqs: typeof entra.requests, app: string, grant: string): void {
  expect(reqs.length).toBeGreaterThanOrEqual(1);
  expect(reqs.map((r) => [r.clientId, r.grant, r.status])).toEqual(reqs.map(() => [app, grant, 200]));
}

/**
 * Rotates a credential (in Entra, then on disk) and checks the next call fetched a token with the
 * new one; then writes a bad file and checks the credential and token already held are kept.
 */
async function rotateThenBreak(
  provider: AzureKekProvider,
  cap: Captured,
  app: string,
  grant: string,
  rotate: () => void,
  breakFile: () => void,
): Promise<void> {
  await roundTrip(provider);
  rotate();
  const n = entra.requests.length;
  await roundTrip(provider);
  expectAll(since(n), app, grant);
  expect(await reloads(cap, 'ok')).toBe(1);
  breakFile();
  const m = entra.requests.length;
  await roundTrip(provider);
  expect(since(m)).toEqual([]); // the token already held, from the kept credential
  expect(await reloads(cap, 'error')).toBe(1);
  expect(cap.lines.join('\n')).toMatch(/keeping the credential already loaded/);
}

describe('azure credential files rotate underneath', () => {
  it('client secret: the next call logs in with the new secret; an empty file keeps the token', async () => {
    const app = 'aaaaaaaa-0000-0000-0000-0000000000a1';
    const one = `one~${randomBytes(12).toString('base64url')}`;
    const two = `two~${randomBytes(12).toString('base64url')}`;
    entra.addClientSecret(app, one);
    const secretFile = dir.file('rot-secret', `${one}\n`);
    const { provider, cap } = make({
      credential: 'client-secret',
      tenantId: TENANT,
      clientId: app,
      clientSecretFile: secretFile,
    });
    await rotateThenBreak(
      provider,
      cap,
      app,
      'client_secret',
      () => {
        entra.addClientSecret(app, two); // the old secret stops working in Entra
        writeFileSync(secretFile, `${two}\n`);
      },
      () => writeFileSync(secretFile, ''),
    );
    for (const s of [one, two]) expect(cap.lines.join('\n')).not.toContain(s);
  });

  it('workload identity: a rotated federated token is presented from the next call', async () => {
    const app = 'aaaaaaaa-0000-0000-0000-0000000000a2';
    const jwt = (): string =>
      `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from(
        JSON.stringify({
          sub: 'system:serviceaccount:kube-system:kms',
          exp: Math.floor(Date.now() / 1000) + 3600,
          n: randomBytes(6).toString('hex'),
        }),
      ).toString('base64url')}.c2ln`;
    const first = jwt();
    const second = jwt();
    entra.addFederatedCredential(app, first);
    const tokenFile = dir.file('rot-sa-token', first);
    const { provider, cap } = make({
      credential: 'workload-identity',
      tenantId: TENANT,
      clientId: app,
      federatedTokenFile: tokenFile,
    });
    await rotateThenBreak(
      provider,
      cap,
      app,
      'client_assertion',
      () => {
        entra.addFederatedCredential(app, second);
        writeFileSync(tokenFile, second);
      },
      () => writeFileSync(tokenFile, 'not a jwt at all'),
    );
  });

  it('client certificate: a renewed certificate signs the next login', async () => {
    const app = 'aaaaaaaa-0000-0000-0000-0000000000a3';
    const certPem = (name: string): string => {
      const key = join(dir.path, `${name}.key`);
      const crt = join(dir.path, `${name}.crt`);
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-keyout',
          key,
          '-out',
          crt,
          '-days',
          '2',
          '-subj',
          `/CN=${name}`,
        ],
        { stdio: 'ignore' },
      );
      return `${readFileSync(crt, 'utf8')}${readFileSync(key, 'utf8')}`;
    };
    const one = certPem('app-cert-1');
    const two = certPem('app-cert-2');
    entra.addClientCertificate(app, one);
    const certFile = dir.file('rot-client.pem', one);
    const { provider, cap } = make({
      credential: 'client-certificate',
      tenantId: TENANT,
      clientId: app,
      clientCertificateFile: certFile,
    });
    await rotateThenBreak(
      provider,
      cap,
      app,
      'client_assertion',
      () => {
        entra.addClientCertificate(app, two); // Entra now trusts only the new certificate
        writeFileSync(certFile, two);
      },
      () => writeFileSync(certFile, two.replace(/-----BEGIN PRIVATE KEY-----[\s\S]*$/, '')),
    );
  });
});
