/**
 * Opt-in test against a real Vault or OpenBao. Skipped unless VAULT_ADDR is set together with a
 * token (VAULT_TOKEN, or VAULT_TOKEN_FILE).
 *
 *   VAULT_ADDR=https://vault:8200 VAULT_TOKEN=... [VAULT_NAMESPACE=ns] [VAULT_CACERT=ca.pem] \
 *   [KMS_PLUGIN_LIVE_VAULT_MOUNT=transit] [KMS_PLUGIN_LIVE_VAULT_KEY=k8s-kms-plugin-live] \
 *   node --experimental-vm-modules node_modules/jest/bin/jest.js test/live/vault.live.test.ts
 *
 * The token needs the policy in deploy/policies/vault-policy.hcl for the key. If the key does not
 * exist and the token may create it (`create`/`update` on <mount>/keys/<key>), the test creates it.
 * It never rotates or deletes anything.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vaultSchema } from '../../src/config/providers/vault.js';
import { timeoutSignal } from '../../src/deadline.js';
import { createProvider } from '../../src/kek/vault/index.js';
import { silentLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';

const addr = process.env.VAULT_ADDR;
const token = process.env.VAULT_TOKEN;
const tokenFileEnv = process.env.VAULT_TOKEN_FILE;
const maybe = addr && (token || tokenFileEnv) ? describe : describe.skip;

maybe('vault provider against a real Vault/OpenBao (live)', () => {
  const mount = process.env.KMS_PLUGIN_LIVE_VAULT_MOUNT ?? 'transit';
  const keyName = process.env.KMS_PLUGIN_LIVE_VAULT_KEY ?? 'k8s-kms-plugin-live';
  const namespace = process.env.VAULT_NAMESPACE || undefined;
  let dir: string;
  let tokenFile: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vault-live-'));
    tokenFile = tokenFileEnv ?? join(dir, 'token');
    if (!tokenFileEnv) writeFileSync(tokenFile, token ?? '', { mode: 0o600 });
    // Create the key if it is missing (ignored when the policy does not allow it).
    const headers: Record<string, string> = { 'x-vault-token': token ?? '' };
    if (namespace) headers['x-vault-namespace'] = namespace;
    if (token)
      await fetch(`${addr}/v1/${mount}/keys/${keyName}`, { method: 'POST', headers }).catch(() => undefined);
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test('round trip with the configured key', async () => {
    const config = vaultSchema.parse({
      address: addr,
      namespace,
      transitMount: mount,
      keyName,
      associatedData: 'k8s-kms-plugin live test',
      ...(process.env.VAULT_CACERT ? { caFile: process.env.VAULT_CACERT } : {}),
      auth: { method: 'token', tokenFile },
    });
    const p = await createProvider(config, {
      logger: silentLogger(),
      metrics: new Metrics({ processMetrics: false }),
      role: 'primary',
    });
    try {
      const v = await p.currentVersion(timeoutSignal(10_000));
      expect(v.ref.version).toMatch(/^\d+$/);
      expect(v.ref.unique).toBeDefined();
      const dek = randomBytes(32);
      const w = await p.wrap(dek, v, timeoutSignal(10_000));
      expect(w.wrapped.toString()).toMatch(new RegExp(`^vault:v${v.ref.version}:`));
      expect(await p.unwrap(w.wrapped, w.ref, timeoutSignal(10_000))).toEqual(dek);
    } finally {
      await p.close();
    }
  });
});
