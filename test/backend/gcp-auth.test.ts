/**
 * Credentials with the real SDK over TLS: Application Default Credentials from a fake metadata
 * server (the GKE Workload Identity path), and an explicit service-account credentials file.
 * gRPC sends bearer tokens only over TLS, so the KMS fake serves TLS with a throwaway cert and the
 * provider trusts it through gcp.caFile.
 */
import { createPublicKey, generateKeyPairSync, randomBytes, verify } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { timeoutSignal } from '../../src/deadline.js';
import { PluginError } from '../../src/errors.js';
import { TEST_KEY, providerFor, type ProviderHandle } from '../fakes/gcp-kms/harness.js';
import { FakeMetadataServer } from '../fakes/gcp-kms/metadata-server.js';
import { FakeGcpKms } from '../fakes/gcp-kms/server.js';
import { selfSignedCert, type TestCert } from '../fakes/gcp-kms/tls.js';

let cert: TestCert;
let fake: FakeGcpKms;
let metadata: FakeMetadataServer;
const handles: ProviderHandle[] = [];
const savedEnv = { ...process.env };

beforeAll(async () => {
  cert = selfSignedCert();
  fake = await FakeGcpKms.start({ tls: { certPem: cert.certPem, keyPem: cert.keyPem } });
  fake.createKey(TEST_KEY);
  metadata = await FakeMetadataServer.start();
  // ADC must find nothing but the fake metadata server (and never probe 169.254.169.254).
  delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
  process.env.CLOUDSDK_CONFIG = join(cert.dir, 'no-gcloud');
  process.env.GCE_METADATA_HOST = metadata.host;
  process.env.METADATA_SERVER_DETECTION = 'assume-present';
});

afterEach(async () => {
  for (const h of handles.splice(0)) await h.provider.close();
  fake.resetCalls();
});

afterAll(async () => {
  process.env = savedEnv;
  await fake.close();
  await metadata.close();
  cert.cleanup();
});

async function tlsProvider(overrides: Record<string, unknown>): Promise<ProviderHandle> {
  const h = await providerFor(fake, {
    // The first call sets up TLS and fetches a token: generous on a loaded CI box.
    attemptTimeout: '5s',
    insecure: false,
    endpoint: `localhost:${fake.port}`,
    caFile: cert.certFile,
    ...overrides,
  });
  handles.push(h);
  return h;
}

describe('gcp provider credentials (TLS fake)', () => {
  it('uses Application Default Credentials from the metadata server (GKE Workload Identity path)', async () => {
    const h = await tlsProvider({});
    const info = await h.provider.currentVersion(timeoutSignal(10_000));
    const dek = randomBytes(32);
    const w = await h.provider.wrap(dek, info, timeoutSignal(10_000));
    expect((await h.provider.unwrap(w.wrapped, w.ref, timeoutSignal(10_000))).equals(dek)).toBe(true);
    expect(metadata.tokenRequests).toBeGreaterThanOrEqual(1);
    const auths = fake.calls.map((c) => c.authorization);
    expect(auths).toHaveLength(3);
    for (const a of auths) expect(a).toBe(`Bearer ${metadata.token}`);
    // The token never reaches the plugin's logs.
    expect(h.logs.join('\n')).not.toContain(metadata.token);
  });

  it('uses a service-account credentials file when gcp.credentialsFile is set', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const file = join(cert.dir, 'sa.json');
    writeFileSync(
      file,
      JSON.stringify({
        type: 'service_account',
        project_id: 'test-project',
        private_key_id: 'test-key-1',
        private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
        client_email: 'kms-plugin@test-project.iam.gserviceaccount.com',
        client_id: '1',
        token_uri: `http://${metadata.host}/token-not-used`,
      }),
      { mode: 0o600 },
    );
    const before = metadata.tokenRequests;
    const h = await tlsProvider({ credentialsFile: file });
    await h.provider.currentVersion(timeoutSignal(10_000));
    const auth = fake.calls[0].authorization ?? '';
    expect(auth).toMatch(/^Bearer eyJ/);
    // A self-signed JWT from that key (no token exchange, no metadata server).
    const [header, payload, signature] = auth.slice('Bearer '.length).split('.');
    const ok = verify(
      'sha256',
      Buffer.from(`${header}.${payload}`),
      createPublicKey(publicKey.export({ type: 'spki', format: 'pem' })),
      Buffer.from(signature, 'base64url'),
    );
    expect(ok).toBe(true);
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as {
      iss: string;
      scope?: string;
      aud?: string;
    };
    expect(claims.iss).toBe('kms-plugin@test-project.iam.gserviceaccount.com');
    expect(metadata.tokenRequests).toBe(before);
    expect(h.logs.join('\n')).not.toContain(signature);
  });

  it('a rotated credentials file is used from the next call; a bad one keeps the old credentials', async () => {
    const saFile = (name: string) => {
      const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const json = JSON.stringify({
        type: 'service_account',
        project_id: 'test-project',
        private_key_id: `${name}-key`,
        private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
        client_email: `${name}@test-project.iam.gserviceaccount.com`,
        client_id: '1',
        token_uri: `http://${metadata.host}/token-not-used`,
      });
      return { json, publicKey };
    };
    /** Who signed the bearer JWT of a call, checked against both keys. */
    const signer = (auth: string | undefined, keys: Record<string, ReturnType<typeof saFile>>) => {
      const [header, payload, signature] = (auth ?? '').slice('Bearer '.length).split('.');
      const iss = (JSON.parse(Buffer.from(payload, 'base64url').toString()) as { iss: string }).iss;
      const by = Object.entries(keys).find(([, k]) =>
        verify(
          'sha256',
          Buffer.from(`${header}.${payload}`),
          k.publicKey,
          Buffer.from(signature, 'base64url'),
        ),
      )?.[0];
      return [iss.split('@')[0], by];
    };
    const one = saFile('sa-one');
    const two = saFile('sa-two');
    const file = join(cert.dir, 'sa-rotating.json');
    writeFileSync(file, one.json, { mode: 0o600 });
    const h = await tlsProvider({ credentialsFile: file });
    const reloads = async (outcome: string) =>
      (await h.metrics.credentialReloads.get()).values.find((v) => v.labels.outcome === outcome)?.value;
    await h.provider.currentVersion(timeoutSignal(10_000));
    writeFileSync(file, two.json);
    await h.provider.currentVersion(timeoutSignal(10_000));
    writeFileSync(file, '{"type": "service_account"}');
    await h.provider.currentVersion(timeoutSignal(10_000));
    const keys = { 'sa-one': one, 'sa-two': two };
    expect(fake.calls.map((c) => signer(c.authorization, keys))).toEqual([
      ['sa-one', 'sa-one'],
      ['sa-two', 'sa-two'],
      ['sa-two', 'sa-two'],
    ]);
    expect([await reloads('ok'), await reloads('error')]).toEqual([1, 1]);
    expect(h.logs.join('\n')).toMatch(/gcp\.credentialsFile.*private_key and client_email/);
  });

  it('verifies the server certificate: without gcp.caFile the self-signed fake is refused', async () => {
    const h = await tlsProvider({ caFile: undefined, maxAttempts: 1, attemptTimeout: '1s' });
    let err: unknown;
    try {
      await h.provider.currentVersion(timeoutSignal(1500));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PluginError);
    expect(['unavailable', 'deadline']).toContain((err as PluginError).kind);
    expect(fake.calls).toHaveLength(0); // the handshake failed: no RPC reached the fake
  });
});

describe('gcp provider without usable credentials (issue 12.6)', () => {
  it('is classed permission_denied, as docs/providers/gcp.md says, with a message naming the credentials', async () => {
    const saved = { ...process.env };
    process.env.METADATA_SERVER_DETECTION = 'none';
    delete process.env.GCE_METADATA_HOST;
    try {
      const h = await tlsProvider({ maxAttempts: 1 });
      let err: unknown;
      try {
        await h.provider.currentVersion(timeoutSignal(10_000));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PluginError);
      expect(`${(err as PluginError).kind}: ${(err as PluginError).message}`).toMatch(/^permission_denied: /);
      expect((err as PluginError).message).toMatch(/credentials/i);
    } finally {
      process.env = saved;
    }
  });
});
