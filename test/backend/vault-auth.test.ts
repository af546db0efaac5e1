/**
 * Vault authentication against the fake: token file reload, Kubernetes and AppRole login,
 * transparent re-login after expiry, renewal at 2/3 of the TTL, the TTL metric, and no
 * credential ever in logs or errors.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { VaultHarness, deadlineIn, useVaultHarness } from '../fakes/vault-transit/harness.js';

const sig = (): AbortSignal => deadlineIn(3000);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('vault auth', () => {
  let h: VaultHarness;
  const jwt = `eyJhbGciOiJSUzI1NiJ9.${Buffer.from('{"sub":"system:serviceaccount:kube-system:kms"}').toString('base64url')}.c2lnbmF0dXJl`;

  useVaultHarness((started) => (h = started));

  const roundTrip = async (p: Awaited<ReturnType<VaultHarness['provider']>>): Promise<void> => {
    const v = await p.currentVersion(sig());
    const dek = randomBytes(32);
    const w = await p.wrap(dek, v, sig());
    expect(await p.unwrap(w.wrapped, w.ref, sig())).toEqual(dek);
  };

  test('token file: a changed file is picked up without a restart', async () => {
    const a = h.fake.issueToken({ ttlSeconds: 0 });
    const b = h.fake.issueToken({ ttlSeconds: 0 });
    const file = h.file('token', a);
    const p = await h.provider(
      { auth: { method: 'token', tokenFile: file } },
      { auth: { tokenFileCheckMs: 20 } },
    );
    await roundTrip(p);
    writeFileSync(file, `${b}\n`);
    await sleep(60);
    await roundTrip(p);
    const tokens = h.fake.requests.filter((r) => r.path.startsWith('transit/')).map((r) => r.token);
    expect(tokens.slice(0, 3)).toEqual([a, a, a]);
    expect(tokens.slice(3)).toEqual([b, b, b]);
  });

  test('token file: after a 403 the file is re-read at once; an unchanged file gives permission_denied', async () => {
    const a = h.fake.issueToken({ ttlSeconds: 0 });
    const file = h.file('token', a);
    const p = await h.provider(
      { auth: { method: 'token', tokenFile: file } },
      { auth: { tokenFileCheckMs: 60_000 } },
    );
    const v = await p.currentVersion(sig());
    h.fake.revokeToken(a);
    const b = h.fake.issueToken({ ttlSeconds: 0 });
    writeFileSync(file, b);
    await p.wrap(randomBytes(32), v, sig());
    h.fake.revokeToken(b);
    const err = (await p.wrap(randomBytes(32), v, sig()).catch((e: unknown) => e)) as Error & {
      kind: string;
    };
    expect(err.kind).toBe('permission_denied');
    expect(err.message).toMatch(/policy/);
    expect(err.message).not.toContain(b);
  });

  test('token file: TTL from lookup-self is exported and a renewable token is renewed', async () => {
    const token = h.fake.issueToken({ ttlSeconds: 3, renewable: true });
    const p = await h.provider({ auth: { method: 'token', tokenFile: h.file('token', token) } });
    await p.currentVersion(sig());
    await sleep(200);
    const ttl = await h.metric('kms_plugin_credential_ttl_seconds', { provider: 'vault' });
    expect(ttl).toBeGreaterThan(1);
    expect(ttl).toBeLessThanOrEqual(3);
    await sleep(2300); // renewal at ~2/3 of 3 s
    expect(h.fake.count('auth/token/renew-self')).toBeGreaterThanOrEqual(1);
    expect(
      await h.metric('kms_plugin_credential_renewals_total', { provider: 'vault', outcome: 'renewed' }),
    ).toBeGreaterThanOrEqual(1);
    expect(h.fake.tokenTtl(token)).toBeGreaterThan(1); // without renewal about 0.5 s would be left
    await roundTrip(p);
  });

  test('missing token file: permission_denied naming the file', async () => {
    const p = await h.provider({ auth: { method: 'token', tokenFile: `${h.dir}/absent` } });
    await expect(p.currentVersion(sig())).rejects.toMatchObject({
      kind: 'permission_denied',
      message: expect.stringMatching(/tokenFile .*absent \(ENOENT\)/),
    });
  });

  test('kubernetes: logs in with role and JWT; token expiry mid-run → transparent re-login', async () => {
    h.fake.addKubernetesRole('kms-plugin', jwt, { ttlSeconds: 3600 });
    const p = await h.provider({
      auth: { method: 'kubernetes', role: 'kms-plugin', jwtFile: h.file('jwt', jwt) },
    });
    await roundTrip(p);
    const login = h.fake.requests.find((r) => r.path === 'auth/kubernetes/login');
    expect(login?.body).toEqual({ role: 'kms-plugin', jwt });
    expect(h.fake.count('auth/kubernetes/login')).toBe(1);
    const v = await p.currentVersion(sig());

    expect(h.fake.expireAllTokens()).toBe(1);
    const dek = randomBytes(32);
    const w = await p.wrap(dek, v, sig()); // 403 → login → retry, invisible to the caller
    expect(await p.unwrap(w.wrapped, w.ref, sig())).toEqual(dek);
    expect(h.fake.count('auth/kubernetes/login')).toBe(2);
    expect(
      await h.metric('kms_plugin_credential_renewals_total', { provider: 'vault', outcome: 'login' }),
    ).toBe(2);
    const denied = h.fake.requests.filter((r) => r.status === 403);
    expect(denied).toHaveLength(1);
  });

  test('kubernetes: concurrent 403s share one login', async () => {
    h.fake.addKubernetesRole('kms-plugin', jwt);
    const p = await h.provider({
      auth: { method: 'kubernetes', role: 'kms-plugin', jwtFile: h.file('jwt', jwt) },
    });
    const v = await p.currentVersion(sig());
    h.fake.expireAllTokens();
    await sleep(1100); // past the forced-login spacing
    await Promise.all(Array.from({ length: 10 }, () => p.wrap(randomBytes(32), v, sig())));
    expect(h.fake.count('auth/kubernetes/login')).toBe(2);
  });

  test('kubernetes: the JWT file is re-read at every login (projected token rotation)', async () => {
    const jwt2 = `${jwt}x`;
    h.fake.addKubernetesRole('kms-plugin', jwt2);
    const file = h.file('jwt', jwt);
    const p = await h.provider({ auth: { method: 'kubernetes', role: 'kms-plugin', jwtFile: file } });
    const err = (await p.currentVersion(sig()).catch((e: unknown) => e)) as Error & { kind: string };
    expect(err.kind).toBe('permission_denied');
    expect(err.message).not.toContain(jwt);
    writeFileSync(file, jwt2);
    await roundTrip(p);
  });

  test('a non-renewable token is replaced by a new login before it expires', async () => {
    h.fake.addKubernetesRole('kms-plugin', jwt, { ttlSeconds: 3, renewable: false });
    const p = await h.provider({
      auth: { method: 'kubernetes', role: 'kms-plugin', jwtFile: h.file('jwt', jwt) },
    });
    await p.currentVersion(sig());
    expect(h.fake.count('auth/kubernetes/login')).toBe(1);
    await sleep(2400);
    expect(h.fake.count('auth/kubernetes/login')).toBe(2);
    expect(h.fake.count('renew-self')).toBe(0);
    await roundTrip(p);
    expect(h.fake.requests.filter((r) => r.status === 403)).toHaveLength(0);
  });

  test('approle: logs in with role_id and secret_id files; a wrong secret is permission_denied without the secret', async () => {
    const secret = 'f1a2b3c4-secret-id-value';
    h.fake.addAppRole('role-123', secret, { ttlSeconds: 600 });
    const p = await h.provider({
      auth: {
        method: 'approle',
        roleIdFile: h.file('role-id', 'role-123\n'),
        secretIdFile: h.file('secret-id', `${secret}\n`),
      },
    });
    await roundTrip(p);
    expect(h.fake.requests.find((r) => r.path === 'auth/approle/login')?.body).toEqual({
      role_id: 'role-123',
      secret_id: secret,
    });
    const ttl = await h.metric('kms_plugin_credential_ttl_seconds', { provider: 'vault' });
    expect(ttl).toBeGreaterThan(590);

    const q = await h.provider({
      auth: {
        method: 'approle',
        roleIdFile: h.file('role-id2', 'role-123'),
        secretIdFile: h.file('secret-id2', 'wrong-secret-value'),
      },
    });
    const err = (await q.currentVersion(sig()).catch((e: unknown) => e)) as Error & { kind: string };
    expect(err.kind).toBe('permission_denied');
    expect(err.message).not.toContain('wrong-secret-value');
    expect(
      await h.metric('kms_plugin_credential_renewals_total', { provider: 'vault', outcome: 'login_failed' }),
    ).toBeGreaterThanOrEqual(1);
  });

  test('no token, JWT or secret ever reaches logs, metrics or error messages', async () => {
    const secret = 'approle-secret-9c1f';
    h.fake.addKubernetesRole('kms-plugin', jwt, { ttlSeconds: 3 });
    h.fake.addAppRole('role-9', secret);
    const k = await h.provider({
      auth: { method: 'kubernetes', role: 'kms-plugin', jwtFile: h.file('jwt', jwt) },
    });
    const a = await h.provider({
      auth: { method: 'approle', roleIdFile: h.file('r', 'role-9'), secretIdFile: h.file('s', secret) },
    });
    const t = await h.provider();
    const errors: string[] = [];
    for (const p of [k, a, t]) {
      await roundTrip(p);
      h.fake.expireAllTokens();
      await sleep(1050);
      await roundTrip(p).catch((e: unknown) => errors.push(String(e)));
    }
    await sleep(1200); // let a renewal happen
    // Vault echoing a credential in an error must not carry it into our messages.
    h.fake.faults.push({
      match: 'auth/approle/login',
      status: 400,
      errors: [`invalid secret_id ${secret} for role-9`],
    });
    const echo = await h.provider({
      auth: { method: 'approle', roleIdFile: h.file('r2', 'role-9'), secretIdFile: h.file('s2', secret) },
    });
    const echoed = (await echo.currentVersion(sig()).catch((e: unknown) => e)) as Error;
    expect(echoed.message).toMatch(/invalid secret_id \[redacted\]/);
    errors.push(echoed.message);
    h.fake.faults.push({
      match: 'transit/keys',
      status: 403,
      errors: [`permission denied for ${h.fake.issuedTokens()[0]}`],
    });
    const bad = await h.provider({
      auth: { method: 'token', tokenFile: h.file('bad', h.fake.issuedTokens()[0]) },
    });
    await bad.currentVersion(sig()).catch((e: unknown) => errors.push(String((e as Error).message)));
    expect(errors.length).toBeGreaterThanOrEqual(2);
    const metrics = await h.metrics.registry.metrics();
    const haystack = [...h.logs.lines, ...errors, metrics].join('\n');
    expect(h.logs.lines.length).toBeGreaterThan(5);
    for (const s of [
      ...h.fake.issuedTokens(),
      h.fake.rootToken === 'root' ? 'hvs.' : h.fake.rootToken,
      jwt,
      secret,
    ]) {
      expect(haystack).not.toContain(s);
    }
  });
});
