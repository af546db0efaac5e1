/**
 * The `vault:` section: HashiCorp Vault / OpenBao Transit as the KEK.
 *
 * ```yaml
 * provider: vault
 * vault:
 *   address: https://vault.example.internal:8200
 *   namespace: platform          # Vault Enterprise / OpenBao namespace (optional)
 *   transitMount: transit        # where the Transit engine is mounted
 *   keyName: k8s-kms-kek         # aes256-gcm96 key
 *   associatedData: cluster-a    # optional; bound into every wrap (changing it orphans old DEKs)
 *   tls: { caFile: /etc/vault/ca.crt, serverName: vault.example.internal }
 *   auth: { method: kubernetes, role: kms-plugin, jwtFile: /var/run/secrets/kubernetes.io/serviceaccount/token }
 * ```
 */
import { z } from 'zod';
import { duration, nonEmpty, type FlagSpec } from '../fields.js';

export const VAULT_AUTH_METHODS = ['token', 'kubernetes', 'approle', 'cert'] as const;
export type VaultAuthMethod = (typeof VAULT_AUTH_METHODS)[number];

const DEFAULT_SA_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** A mount or namespace path: no leading or trailing slash, no empty or dot segments. */
function vaultPath(what: string, example: string) {
  return z
    .string({
      error: (iss) =>
        iss.input === undefined
          ? `is required: set ${what}, e.g. "${example}"`
          : `expected ${what}, e.g. "${example}"`,
    })
    .trim()
    .transform((s) => s.replace(/^\/+|\/+$/g, ''))
    .refine((s) => s.length > 0, { message: `must not be empty: set ${what}, e.g. "${example}"` })
    .refine(
      (s) =>
        s
          .split('/')
          .every((seg) => seg !== '' && seg !== '.' && seg !== '..' && /^[A-Za-z0-9_.@-]+$/.test(seg)),
      {
        message: `expected ${what} made of letters, digits, "_", "-", "." or "@" separated by single "/", e.g. "${example}"`,
      },
    );
}

const address = z
  .string({
    error: (iss) =>
      `${iss.input === undefined ? 'is required: set' : 'expected'} vault.address, the Vault URL, e.g. "https://vault.example.internal:8200"`,
  })
  .trim()
  .transform((s, ctx) => {
    let url: URL;
    try {
      url = new URL(s);
    } catch {
      ctx.addIssue({
        code: 'custom',
        message: `expected a URL like "https://vault.example.internal:8200"; got ${JSON.stringify(s)}`,
      });
      return z.NEVER;
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      ctx.addIssue({
        code: 'custom',
        message: `expected an http:// or https:// URL; got ${JSON.stringify(s)}`,
      });
      return z.NEVER;
    }
    if (url.username || url.password || url.search || url.hash) {
      ctx.addIssue({
        code: 'custom',
        message:
          'must be a plain URL without user info, query or fragment (credentials go in vault.auth, not the address)',
      });
      return z.NEVER;
    }
    if (/\/v1\/?$/.test(url.pathname)) {
      ctx.addIssue({
        code: 'custom',
        message: 'leave out the "/v1" suffix: the plugin adds it (e.g. "https://vault:8200")',
      });
      return z.NEVER;
    }
    return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
  });

const tlsSchema = z
  .strictObject({
    /** PEM bundle of CAs that sign the Vault server certificate (default: the system trust store). */
    caFile: nonEmpty('vault.tls.caFile (a PEM CA bundle path)').optional(),
    /** Client certificate (PEM) for mutual TLS and for `auth.method: cert`. */
    certFile: nonEmpty('vault.tls.certFile (a PEM client certificate path)').optional(),
    /** Private key (PEM) for certFile. */
    keyFile: nonEmpty('vault.tls.keyFile (a PEM private key path)').optional(),
    /** TLS server name (SNI and certificate check) when it differs from the address host. */
    serverName: nonEmpty('vault.tls.serverName (a DNS name)').optional(),
  })
  .superRefine((v, ctx) => {
    if ((v.certFile === undefined) !== (v.keyFile === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [v.certFile === undefined ? 'certFile' : 'keyFile'],
        message: 'vault.tls.certFile and vault.tls.keyFile go together: set both or neither',
      });
    }
  });

const authSchema = z.strictObject({
  /** token (from a file) | kubernetes (JWT login) | approle | cert (TLS client certificate). */
  method: z.enum(VAULT_AUTH_METHODS, {
    error: `expected vault.auth.method to be one of: ${VAULT_AUTH_METHODS.join(', ')}`,
  }),
  /** Where the auth method is mounted (default: the method's name, e.g. "kubernetes"). */
  mount: vaultPath('vault.auth.mount', 'kubernetes').optional(),
  /** token: file holding a Vault token; re-read when it changes. */
  tokenFile: nonEmpty('vault.auth.tokenFile (a file holding a Vault token)').optional(),
  /** kubernetes: the Vault role; cert: the certificate role name (optional). */
  role: nonEmpty('vault.auth.role (the Vault role name)').optional(),
  /** kubernetes: file holding the service-account JWT, re-read at every login. */
  jwtFile: nonEmpty('vault.auth.jwtFile (a file holding a service-account JWT)').optional(),
  /** approle: files holding the role_id and secret_id, re-read at every login. */
  roleIdFile: nonEmpty('vault.auth.roleIdFile (a file holding the AppRole role_id)').optional(),
  secretIdFile: nonEmpty('vault.auth.secretIdFile (a file holding the AppRole secret_id)').optional(),
});

export const vaultSchema = z
  .strictObject({
    /** Vault or OpenBao address, e.g. https://vault.example.internal:8200 (no /v1). */
    address,
    /** Namespace (Vault Enterprise, OpenBao), sent as X-Vault-Namespace. */
    namespace: vaultPath('vault.namespace', 'platform/team-a').optional(),
    /** Mount path of the Transit secrets engine. */
    transitMount: vaultPath('vault.transitMount', 'transit').default('transit'),
    /** Name of the Transit key (type aes256-gcm96 recommended). */
    keyName: vaultPath('vault.keyName (the Transit key name)', 'k8s-kms-kek').refine(
      (s) => !s.includes('/'),
      {
        message: 'a Transit key name has no "/"; put the mount path in vault.transitMount',
      },
    ),
    /**
     * Optional associated data bound into every wrap (Transit `associated_data`, AEAD keys only).
     * Every replica must use the same value, and changing it makes existing DEKs undecryptable.
     */
    associatedData: z
      .string()
      .min(1, { message: 'must not be empty: remove vault.associatedData or give it a value' })
      .optional(),
    tls: tlsSchema.default({}),
    auth: authSchema,
    /**
     * Cap on one remote attempt, e.g. "2s". Default: none, an attempt may use all the time left
     * before the caller's deadline (minus the reply reserve). Same name for every provider.
     */
    attemptTimeout: duration('2s', { min: 50, max: 60_000 }).optional(),
  })
  .superRefine((v, ctx) => {
    const need = (field: keyof z.infer<typeof authSchema>, why: string): void => {
      if (v.auth[field] === undefined)
        ctx.addIssue({ code: 'custom', path: ['auth', field], message: `is required: ${why}` });
    };
    const forbid = (fields: Array<keyof z.infer<typeof authSchema>>): void => {
      for (const f of fields) {
        if (v.auth[f] !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['auth', f],
            message: `is not used by auth.method "${v.auth.method}"; remove it (or pick the method it belongs to)`,
          });
        }
      }
    };
    switch (v.auth.method) {
      case 'token':
        need('tokenFile', 'auth.method "token" reads the Vault token from vault.auth.tokenFile');
        forbid(['mount', 'role', 'jwtFile', 'roleIdFile', 'secretIdFile']);
        break;
      case 'kubernetes':
        need('role', 'auth.method "kubernetes" logs in with a Vault role (vault.auth.role)');
        forbid(['tokenFile', 'roleIdFile', 'secretIdFile']);
        break;
      case 'approle':
        need('roleIdFile', 'auth.method "approle" reads the role_id from vault.auth.roleIdFile');
        need('secretIdFile', 'auth.method "approle" reads the secret_id from vault.auth.secretIdFile');
        forbid(['tokenFile', 'role', 'jwtFile']);
        break;
      case 'cert':
        if (v.tls.certFile === undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['tls', 'certFile'],
            message:
              'is required: auth.method "cert" logs in with the TLS client certificate (vault.tls.certFile and keyFile)',
          });
        }
        forbid(['tokenFile', 'jwtFile', 'roleIdFile', 'secretIdFile']);
        break;
    }
    if (v.address.startsWith('http://') && (v.tls.caFile || v.tls.certFile || v.tls.serverName)) {
      ctx.addIssue({
        code: 'custom',
        path: ['address'],
        message: 'vault.tls is set but the address is http://; use https://',
      });
    }
  })
  .transform((v) => ({
    ...v,
    auth: {
      ...v.auth,
      mount: v.auth.mount ?? v.auth.method,
      jwtFile: v.auth.method === 'kubernetes' ? (v.auth.jwtFile ?? DEFAULT_SA_TOKEN) : v.auth.jwtFile,
    },
  }));
export type VaultConfig = z.output<typeof vaultSchema>;
export type VaultConfigInput = z.input<typeof vaultSchema>;

export const vaultFlags: FlagSpec[] = [
  {
    name: 'vault-address',
    path: ['vault', 'address'],
    type: 'string',
    arg: 'URL',
    description: 'vault provider: Vault/OpenBao address, e.g. https://vault:8200',
  },
  {
    name: 'vault-namespace',
    path: ['vault', 'namespace'],
    type: 'string',
    arg: 'NS',
    description: 'vault provider: namespace (X-Vault-Namespace)',
  },
  {
    name: 'vault-transit-mount',
    path: ['vault', 'transitMount'],
    type: 'string',
    arg: 'PATH',
    description: 'vault provider: Transit mount path (default transit)',
  },
  {
    name: 'vault-key-name',
    path: ['vault', 'keyName'],
    type: 'string',
    arg: 'NAME',
    description: 'vault provider: Transit key name',
  },
  {
    name: 'vault-associated-data',
    path: ['vault', 'associatedData'],
    type: 'string',
    arg: 'TEXT',
    description: 'vault provider: associated data bound into every wrap',
  },
  {
    name: 'vault-ca-file',
    path: ['vault', 'tls', 'caFile'],
    type: 'string',
    arg: 'PATH',
    description: 'vault provider: PEM CA bundle for the server certificate',
  },
  {
    name: 'vault-client-cert-file',
    path: ['vault', 'tls', 'certFile'],
    type: 'string',
    arg: 'PATH',
    description: 'vault provider: PEM client certificate (mTLS, cert auth)',
  },
  {
    name: 'vault-client-key-file',
    path: ['vault', 'tls', 'keyFile'],
    type: 'string',
    arg: 'PATH',
    description: 'vault provider: PEM client private key',
  },
  {
    name: 'vault-tls-server-name',
    path: ['vault', 'tls', 'serverName'],
    type: 'string',
    arg: 'NAME',
    description: 'vault provider: TLS server name (SNI)',
  },
  {
    name: 'vault-auth-method',
    path: ['vault', 'auth', 'method'],
    type: 'string',
    arg: 'METHOD',
    description: `vault provider: auth method: ${VAULT_AUTH_METHODS.join('|')}`,
  },
  {
    name: 'vault-auth-mount',
    path: ['vault', 'auth', 'mount'],
    type: 'string',
    arg: 'PATH',
    description: 'vault provider: auth mount path (default: the method name)',
  },
  {
    name: 'vault-token-file',
    path: ['vault', 'auth', 'tokenFile'],
    type: 'string',
    arg: 'PATH',
    description: 'vault provider: file holding a Vault token (auth method token)',
  },
  {
    name: 'vault-auth-role',
    path: ['vault', 'auth', 'role'],
    type: 'string',
    arg: 'ROLE',
    description: 'vault provider: role for kubernetes or cert auth',
  },
  {
    name: 'vault-jwt-file',
    path: ['vault', 'auth', 'jwtFile'],
    type: 'string',
    arg: 'PATH',
    description: 'vault provider: service-account JWT file (kubernetes auth)',
  },
  {
    name: 'vault-role-id-file',
    path: ['vault', 'auth', 'roleIdFile'],
    type: 'string',
    arg: 'PATH',
    description: 'vault provider: AppRole role_id file',
  },
  {
    name: 'vault-secret-id-file',
    path: ['vault', 'auth', 'secretIdFile'],
    type: 'string',
    arg: 'PATH',
    description: 'vault provider: AppRole secret_id file',
  },
  {
    name: 'vault-attempt-timeout',
    path: ['vault', 'attemptTimeout'],
    type: 'string',
    arg: 'DURATION',
    description:
      'vault provider: cap on one Vault attempt, e.g. 2s (default: the time left before the deadline)',
  },
];
