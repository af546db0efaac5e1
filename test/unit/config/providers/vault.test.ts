/**
 * The `vault:` config section: defaults, normalisation, per-method requirements, clear errors,
 * and the flags / env vars that reach it.
 */
import { vaultSchema } from '../../../../src/config/providers/vault.js';
import { providerFlags } from '../../../../src/config/schema.js';
import { loadConfig } from '../../../../src/config/load.js';
import { ConfigError } from '../../../../src/errors.js';

const base = {
  address: 'https://vault.example:8200',
  keyName: 'kek',
  auth: { method: 'token', tokenFile: '/etc/vault/token' },
};

function issues(input: unknown): string[] {
  const r = vaultSchema.safeParse(input);
  if (r.success) return [];
  return r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('vault config', () => {
  test('defaults and normalisation', () => {
    const c = vaultSchema.parse({
      ...base,
      address: 'HTTPS://Vault.Example:8200/',
      namespace: '/team-a/',
      transitMount: 'kms/transit/',
    });
    expect(c.address).toBe('https://vault.example:8200');
    expect(c.namespace).toBe('team-a');
    expect(c.transitMount).toBe('kms/transit');
    expect(c.tls).toEqual({});
    expect(c.auth).toMatchObject({ method: 'token', mount: 'token', tokenFile: '/etc/vault/token' });
    expect(vaultSchema.parse(base).transitMount).toBe('transit');
  });

  test('kubernetes defaults the JWT file and the mount', () => {
    const c = vaultSchema.parse({ ...base, auth: { method: 'kubernetes', role: 'kms' } });
    expect(c.auth).toMatchObject({
      method: 'kubernetes',
      mount: 'kubernetes',
      role: 'kms',
      jwtFile: '/var/run/secrets/kubernetes.io/serviceaccount/token',
    });
    const d = vaultSchema.parse({
      ...base,
      auth: { method: 'kubernetes', role: 'kms', mount: 'k8s-cp', jwtFile: '/t' },
    });
    expect(d.auth).toMatchObject({ mount: 'k8s-cp', jwtFile: '/t' });
  });

  test.each([
    [{ ...base, address: 'vault:8200' }, /address: expected .*http/],
    [{ ...base, address: 'ftp://vault' }, /address: expected an http/],
    [{ ...base, address: 'https://vault:8200/v1' }, /address: leave out the "\/v1"/],
    [{ ...base, address: 'https://user:pw@vault:8200' }, /address: must be a plain URL/],
    [{ ...base, keyName: '' }, /keyName: must not be empty/],
    [{ ...base, keyName: 'a/b' }, /keyName: a Transit key name has no "\/"/],
    [{ ...base, transitMount: 'a//b' }, /transitMount: expected/],
    [{ ...base, auth: { method: 'token' } }, /auth.tokenFile: is required/],
    [
      { ...base, auth: { method: 'magic' } },
      /auth.method: expected vault.auth.method to be one of: token, kubernetes, approle, cert/,
    ],
    [{ ...base, auth: { method: 'kubernetes' } }, /auth.role: is required/],
    [{ ...base, auth: { method: 'approle', roleIdFile: '/r' } }, /auth.secretIdFile: is required/],
    [{ ...base, auth: { method: 'cert' } }, /tls.certFile: is required: auth.method "cert"/],
    [
      { ...base, auth: { method: 'token', tokenFile: '/t', role: 'x' } },
      /auth.role: is not used by auth.method "token"/,
    ],
    [{ ...base, tls: { certFile: '/c' } }, /tls.keyFile: .*go together/],
    [
      { ...base, address: 'http://vault:8200', tls: { serverName: 'vault' } },
      /address: vault.tls is set but the address is http/,
    ],
    [
      { ...base, address: 'http://vault:8200', caFile: '/ca' },
      /address: vault.caFile is set but the address is http/,
    ],
    [{ ...base, tls: { caFile: '/ca' } }, /Unrecognized key|unrecognized/i],
    [{ ...base, tokenFile: '/t' }, /Unrecognized key|unrecognized/i],
    [{ keyName: 'kek', auth: base.auth }, /address: is required: set vault.address/],
  ])('rejects %j', (input, message) => {
    expect(issues(input).join('\n')).toMatch(message);
  });

  test('cert auth with a client certificate is accepted', () => {
    const c = vaultSchema.parse({
      ...base,
      caFile: '/ca',
      tls: { certFile: '/c', keyFile: '/k' },
      auth: { method: 'cert', role: 'kms' },
    });
    expect(c.auth).toMatchObject({ method: 'cert', mount: 'cert', role: 'kms' });
  });

  test('flags map onto the section and have KMS_PLUGIN_ env vars', () => {
    const c = loadConfig({
      env: {
        KMS_PLUGIN_PROVIDER: 'vault',
        KMS_PLUGIN_VAULT_ADDRESS: 'https://vault:8200',
        KMS_PLUGIN_VAULT_KEY_NAME: 'kek',
        KMS_PLUGIN_VAULT_AUTH_METHOD: 'approle',
      },
      flags: {
        'vault-role-id-file': '/r',
        'vault-secret-id-file': '/s',
        'vault-namespace': 'ns',
        'vault-ca-file': '/ca',
      },
    });
    expect(c.vault).toMatchObject({
      address: 'https://vault:8200',
      namespace: 'ns',
      keyName: 'kek',
      caFile: '/ca',
      auth: { method: 'approle', roleIdFile: '/r', secretIdFile: '/s', mount: 'approle' },
    });
    const vaultFlags = providerFlags('vault');
    expect(new Set(vaultFlags.map((f) => f.name)).size).toBe(vaultFlags.length);
    expect(vaultFlags.every((f) => f.name.startsWith('vault-') && f.path[0] === 'vault')).toBe(true);
  });

  test('a missing field through loadConfig is a ConfigError naming vault.<field>', () => {
    const err = (() => {
      try {
        loadConfig({
          env: {},
          flags: { provider: 'vault', 'vault-address': 'https://vault:8200', 'vault-auth-method': 'token' },
        });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect(String((err as Error).message)).toMatch(/vault\.keyName: is required: set vault\.keyName/);
    expect(() =>
      loadConfig({
        env: {},
        flags: {
          provider: 'vault',
          'vault-address': 'https://v:8200',
          'vault-key-name': 'k',
          'vault-auth-method': 'token',
        },
      }),
    ).toThrow(/vault\.auth\.tokenFile: is required/);
  });
});
