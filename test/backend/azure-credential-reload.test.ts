/**
 * Azure credential files rotated mid-run against the fake Entra ID (real @azure/identity): client
 * secret, client certificate and workload-identity token.
 * After a rotation the next call fetches a new token with the new file (Entra no longer accepts
 * the old secret / certificate / assertion); a bad new file is logged and counted, and the
 * credential and token already loaded keep working (no token request at all).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { timeoutSignal } from '../../src/deadline.js';
import { AzureKekProvider } from '../../src/kek/azure/index.js';
import type { AzureConfigInput } from '../../src/config/providers/azure.js';
import { makeTestPki } from '../fakes/azure-keyvault/certs.js';
import { FakeEntraId } from '../fakes/azure-keyvault/entra.js';
import { FakeKeyVault } from '../fakes/azure-keyvault/server.js';
import { captureDeps, fakeConfig, metricValue, TempDir, writeCa } from '../fakes/azure-keyvault/harness.js';

const TENANT = '11111111-2222-3333-4444-555555555555';
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

function make(over: Partial<AzureConfigInput>) {
  const cap = captureDeps();
  const provider = new AzureKekProvider(
    fakeConfig(vault.url, caFile, { authorityHost: entra.url, ...over }),
    cap.deps,
    { retry: { baseBackoffMs: 10, maxBackoffMs: 40, maxAttempts: 1 } },
  );
  providers.push(provider);
  const reloads = (outcome: string) =>
    metricValue(cap.metrics, 'kms_plugin_credential_reloads_total', { provider: 'azure', outcome });
  return { provider, cap, reloads };
}

async function roundTrip(provider: AzureKekProvider): Promise<void> {
  const info = await provider.currentVersion(timeoutSignal(10_000));
  const dek = randomBytes(32);
  const w = await provider.wrap(dek, info, timeoutSignal(5000));
  expect((await provider.unwrap(w.wrapped, w.ref, timeoutSignal(5000))).equals(dek)).toBe(true);
}

const since = (n: number) => entra.requests.slice(n);

/** Tokens were fetched, all by this application with this grant, all accepted by Entra. */
function expectAll(reqs: typeof entra.requests, app: string, grant: string): void {
  expect(reqs.length).toBeGreaterThanOrEqual(1);
  expect(reqs.map((r) => [r.clientId, r.grant, r.status])).toEqual(reqs.map(() => [app, grant, 200]));
}

beforeAll(async () => {
  await entra.listen();
  await vault.listen();
  vault.createKey('kek');
});
afterEach(async () => {
  while (providers.length) await providers.pop()?.close();
});
afterAll(async () => {
  await vault.close();
  await entra.close();
  dir.remove();
});

describe('azure credential files rotate underneath', () => {
  it('client secret: the next call logs in with the new secret; an empty file keeps the token', async () => {
    const app = 'aaaaaaaa-0000-0000-0000-0000000000a1';
    const one = `one~${randomBytes(12).toString('base64url')}`;
    const two = `two~${randomBytes(12).toString('base64url')}`;
    entra.addClientSecret(app, one);
    const secretFile = dir.file('rot-secret', `${one}\n`);
    const { provider, cap, reloads } = make({
      credential: 'client-secret',
      tenantId: TENANT,
      clientId: app,
      clientSecretFile: secretFile,
    });
    await roundTrip(provider);
    // Rotate in Entra (the old secret stops working) and on disk.
    entra.addClientSecret(app, two);
    writeFileSync(secretFile, `${two}\n`);
    const n = entra.requests.length;
    await roundTrip(provider);
    expectAll(since(n), app, 'client_secret');
    expect(await reloads('ok')).toBe(1);

    writeFileSync(secretFile, '');
    const m = entra.requests.length;
    await roundTrip(provider);
    expect(since(m)).toEqual([]); // the token already held, from the kept credential
    expect(await reloads('error')).toBe(1);
    expect(cap.lines.join('\n')).toMatch(/keeping the credential already loaded/);
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
    const { provider, reloads } = make({
      credential: 'workload-identity',
      tenantId: TENANT,
      clientId: app,
      federatedTokenFile: tokenFile,
    });
    await roundTrip(provider);
    entra.addFederatedCredential(app, second);
    writeFileSync(tokenFile, second);
    const n = entra.requests.length;
    await roundTrip(provider);
    expectAll(since(n), app, 'client_assertion');
    expect(await reloads('ok')).toBe(1);
    writeFileSync(tokenFile, 'not a jwt at all');
    await roundTrip(provider);
    expect(await reloads('error')).toBe(1);
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
    const { provider, reloads } = make({
      credential: 'client-certificate',
      tenantId: TENANT,
      clientId: app,
      clientCertificateFile: certFile,
    });
    await roundTrip(provider);
    entra.addClientCertificate(app, two); // Entra now trusts only the new certificate
    writeFileSync(certFile, two);
    const n = entra.requests.length;
    await roundTrip(provider);
    expectAll(since(n), app, 'client_assertion');
    expect(await reloads('ok')).toBe(1);
    writeFileSync(certFile, two.replace(/-----BEGIN PRIVATE KEY-----[\s\S]*$/, ''));
    await roundTrip(provider);
    expect(await reloads('error')).toBe(1);
  });
});
