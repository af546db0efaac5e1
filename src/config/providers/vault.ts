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
import { nonEmpty, remoteCallFields, type ProviderSection } from '../fields.js';

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
    /** Client certificate (PEM) for mutual TLS and for `auth.method: cert`. Set both certFile and keyFile, or neither. */
    certFile: nonEmpty('vault.tls.certFile (a PEM client certificate path)')
      .optional()
      .meta({
        flag: {
          name: 'vault-client-cert-file',
          arg: 'PATH',
          help: 'PEM client certificate (mTLS, cert auth)',
        },
      }),
    /** Private key (PEM) for certFile. */
    keyFile: nonEmpty('vault.tls.keyFile (a PEM private key path)')
      .optional()
      .meta({ flag: { name: 'vault-client-key-file', arg: 'PATH', help: 'PEM client private key' } }),
    /** TLS server name (SNI and certificate check) when it differs from the address host. */
    serverName: nonEmpty('vault.tls.serverName (a DNS name)')
      .optional()
      .meta({ flag: { arg: 'NAME', help: 'TLS server name (SNI)' } }),
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
  /** `token` (from a file), `kubernetes` (JWT login), `approle` or `cert` (TLS client certificate). Fields of other methods are rejected. */
  method: z
    .enum(VAULT_AUTH_METHODS, {
      error: `expected vault.auth.method to be one of: ${VAULT_AUTH_METHODS.join(', ')}`,
    })
    .meta({ flag: { arg: 'METHOD', help: `auth method: ${VAULT_AUTH_METHODS.join('|')}` } }),
  /** Where the auth method is mounted (default: the method's name, e.g. "kubernetes"). */
  mount: vaultPath('vault.auth.mount', 'kubernetes')
    .optional()
    .meta({ flag: { arg: 'PATH', help: 'auth mount path (default: the method name)' } }),
  /** token: file holding a Vault token; re-read when it changes. */
  tokenFile: nonEmpty('vault.auth.tokenFile (a file holding a Vault token)')
    .optional()
    .meta({
      flag: { name: 'vault-token-file', arg: 'PATH', help: 'file holding a Vault token (auth method token)' },
    }),
  /** kubernetes: the Vault role (required); cert: the certificate role name (optional). */
  role: nonEmpty('vault.auth.role (the Vault role name)')
    .optional()
    .meta({ flag: { arg: 'ROLE', help: 'role for kubernetes or cert auth' } }),
  /** kubernetes: file holding the service-account JWT, re-read at every login. */
  jwtFile: nonEmpty('vault.auth.jwtFile (a file holding a service-account JWT)')
    .optional()
    .meta({
      flag: { name: 'vault-jwt-file', arg: 'PATH', help: 'service-account JWT file (kubernetes auth)' },
    }),
  /** approle: file holding the role_id, re-read at every login. */
  roleIdFile: nonEmpty('vault.auth.roleIdFile (a file holding the AppRole role_id)')
    .optional()
    .meta({ flag: { name: 'vault-role-id-file', arg: 'PATH', help: 'AppRole role_id file' } }),
  /** approle: file holding the secret_id, re-read at every login. */
  secretIdFile: nonEmpty('vault.auth.secretIdFile (a file holding the AppRole secret_id)')
    .optional()
    .meta({ flag: { name: 'vault-secret-id-file', arg: 'PATH', help: 'AppRole secret_id file' } }),
});

export const vaultSchema = z
  .strictObject({
    /** Vault or OpenBao address, e.g. `https://vault.example.internal:8200`: `http://` or `https://`, no user info, no `/v1`. */
    address: address.meta({ flag: { arg: 'URL', help: 'Vault/OpenBao address, e.g. https://vault:8200' } }),
    /** Namespace (Vault Enterprise, OpenBao), sent as `X-Vault-Namespace` on every request, logins included. */
    namespace: vaultPath('vault.namespace', 'platform/team-a')
      .optional()
      .meta({ flag: { arg: 'NS', help: 'namespace (X-Vault-Namespace)' } }),
    /** Mount path of the Transit secrets engine; may contain `/` (`kms/transit`). */
    transitMount: vaultPath('vault.transitMount', 'transit')
      .default('transit')
      .meta({ flag: { arg: 'PATH', help: 'Transit mount path (default transit)' } }),
    /** Name of the Transit key (type aes256-gcm96 recommended). */
    keyName: vaultPath('vault.keyName (the Transit key name)', 'k8s-kms-kek')
      .refine((s) => !s.includes('/'), {
        message: 'a Transit key name has no "/"; put the mount path in vault.transitMount',
      })
      .meta({ flag: { arg: 'NAME', help: 'Transit key name' } }),
    /**
     * Optional associated data bound into every wrap (Transit `associated_data`, AEAD keys only).
     * Every replica must use the same value, and changing it makes existing DEKs undecryptable.
     */
    associatedData: z
      .string()
      .min(1, { message: 'must not be empty: remove vault.associatedData or give it a value' })
      .optional()
      .meta({ flag: { arg: 'TEXT', help: 'associated data bound into every wrap' } }),
    /** PEM bundle of CAs that sign the Vault server certificate (default: the system trust store). */
    caFile: nonEmpty('vault.caFile (a PEM CA bundle path)')
      .optional()
      .meta({ flag: { arg: 'PATH', help: 'PEM CA bundle for the server certificate' } }),
    tls: tlsSchema.default({}),
    auth: authSchema,
    ...remoteCallFields('vault', { service: 'Vault', concurrency: { default: 16, max: 1024 } }),
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
    if (v.address.startsWith('http://') && (v.caFile || v.tls.certFile || v.tls.serverName)) {
      ctx.addIssue({
        code: 'custom',
        path: ['address'],
        message: `${v.caFile ? 'vault.caFile' : 'vault.tls'} is set but the address is http://; use https://`,
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

export const vaultSection = {
  schema: vaultSchema,
  aliases: {
    requestTimeout: 'attemptTimeout',
    callTimeout: 'attemptTimeout',
    'tls.caFile': 'caFile',
  },
} satisfies ProviderSection;
