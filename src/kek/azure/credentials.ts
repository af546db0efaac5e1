/**
 * Builds the TokenCredential the Key Vault clients use, from the `azure:` config:
 *
 * - `default`: DefaultAzureCredential (env service principal, workload identity, managed identity, …).
 * - `workload-identity`, `managed-identity`, `client-secret`, `client-certificate`: that one credential.
 * - `azure-json`: the identity in a self-managed cluster's cloud-provider config (azure.json), for
 *   static pods that cannot use service-account tokens: `useFederatedWorkloadIdentityExtension` →
 *   workload identity; `useManagedIdentityExtension` (+ `userAssignedIdentityID`) → managed identity;
 *   `aadClientSecret` → client secret; `aadClientCertPath` (PEM) → client certificate.
 *
 * Secrets are read from files, kept only inside the credential objects, and returned in `secrets`
 * so error messages can be scrubbed. Nothing here logs them.
 *
 * With `reload` deps, the credential files (client secret, client certificate, federated token,
 * azure.json and the files it names) are followed through CredentialFile: when one changes and
 * the new content is valid, the next getToken builds a fresh credential (a new token from Entra
 * with the new secret / certificate / assertion); a bad new file is logged and counted, and the
 * credential already built keeps its token until that expires.
 */
import {
  ClientCertificateCredential,
  ClientSecretCredential,
  DefaultAzureCredential,
  ManagedIdentityCredential,
  WorkloadIdentityCredential,
} from '@azure/identity';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/identity';
import type { AzureConfig } from '../../config/providers/azure.js';
import { ConfigError } from '../../errors.js';
import type { Logger } from '../../observability/logger.js';
import type { ProviderMetrics } from '../../observability/metrics.js';
import { CredentialFile, jwtExpiry, parsePem, parseSecretText } from '../credential-file.js';
import { readConfigFile, readConfigText } from '../errors.js';

/** Entra ID authority hosts by azure.json `cloud` name. */
export const CLOUD_AUTHORITY: Record<string, string> = {
  azurepubliccloud: 'https://login.microsoftonline.com',
  azureusgovernmentcloud: 'https://login.microsoftonline.us',
  azurechinacloud: 'https://login.chinacloudapi.cn',
  azuregermancloud: 'https://login.microsoftonline.de',
};

const KNOWN_AUTHORITIES = new Set([
  ...Object.values(CLOUD_AUTHORITY),
  'https://login.partner.microsoftonline.cn',
]);

/** The parts of azure.json we read (cloud-provider-azure's names). */
export interface CloudConfigFile {
  cloud?: string;
  tenantId?: string;
  aadClientId?: string;
  aadClientSecret?: string;
  aadClientCertPath?: string;
  aadClientCertPassword?: string;
  useManagedIdentityExtension?: boolean;
  userAssignedIdentityID?: string;
  useFederatedWorkloadIdentityExtension?: boolean;
  aadFederatedTokenFile?: string;
}

export type IdentityKind =
  'default' | 'workload-identity' | 'managed-identity' | 'client-secret' | 'client-certificate';

export interface BuiltCredential {
  credential: TokenCredential;
  kind: IdentityKind;
  /** Non-secret, for logs and `probe`: which identity is used. */
  description: string;
  /** Values that must never appear in messages. */
  secrets: string[];
  authorityHost?: string;
}

/** Parses azure.json; errors name the field and never echo values. */
export function parseCloudConfig(text: string, file: string): CloudConfigFile {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new ConfigError('azure.cloudConfigFile', `${file} is not valid JSON`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new ConfigError('azure.cloudConfigFile', `${file} must contain a JSON object`);
  }
  const o = doc as Record<string, unknown>;
  const out: CloudConfigFile = {};
  const str = (k: keyof CloudConfigFile): void => {
    const v = o[k];
    if (v === undefined || v === null || v === '') return;
    if (typeof v !== 'string')
      throw new ConfigError('azure.cloudConfigFile', `${file}: "${k}" must be a string`);
    (out as Record<string, unknown>)[k] = v.trim();
  };
  const flag = (k: keyof CloudConfigFile): void => {
    const v = o[k];
    if (v === undefined || v === null) return;
    if (typeof v === 'boolean') (out as Record<string, unknown>)[k] = v;
    else if (v === 'true' || v === 'false') (out as Record<string, unknown>)[k] = v === 'true';
    else throw new ConfigError('azure.cloudConfigFile', `${file}: "${k}" must be true or false`);
  };
  for (const k of [
    'cloud',
    'tenantId',
    'aadClientId',
    'aadClientSecret',
    'aadClientCertPath',
    'aadClientCertPassword',
    'userAssignedIdentityID',
    'aadFederatedTokenFile',
  ] as const)
    str(k);
  for (const k of ['useManagedIdentityExtension', 'useFederatedWorkloadIdentityExtension'] as const) flag(k);
  return out;
}

interface Resolved {
  kind: IdentityKind;
  tenantId?: string;
  clientId?: string;
  clientSecret?: string;
  certificatePath?: string;
  tokenFile?: string;
  authorityHost?: string;
}

function fromCloudConfig(cfg: AzureConfig): Resolved {
  const file = cfg.cloudConfigFile as string;
  const c = parseCloudConfig(readConfigText(file, 'azure.cloudConfigFile', 'the cloud config'), file);
  let authorityHost = cfg.authorityHost;
  if (authorityHost === undefined && c.cloud !== undefined) {
    authorityHost = CLOUD_AUTHORITY[c.cloud.toLowerCase()];
    if (authorityHost === undefined) {
      throw new ConfigError(
        'azure.cloudConfigFile',
        `${file}: unknown "cloud" ${JSON.stringify(c.cloud)}; expected ${Object.keys(CLOUD_AUTHORITY).join(', ')} (case-insensitive) or set azure.authorityHost`,
      );
    }
  }
  const tenantId = cfg.tenantId ?? c.tenantId;
  const clientId = cfg.clientId ?? c.aadClientId;
  if (c.useFederatedWorkloadIdentityExtension) {
    const tokenFile =
      cfg.federatedTokenFile ?? c.aadFederatedTokenFile ?? process.env.AZURE_FEDERATED_TOKEN_FILE;
    if (!tenantId || !clientId || !tokenFile) {
      throw new ConfigError(
        'azure.cloudConfigFile',
        `${file}: workload identity needs tenantId, aadClientId and aadFederatedTokenFile`,
      );
    }
    return { kind: 'workload-identity', tenantId, clientId, tokenFile, authorityHost };
  }
  if (c.useManagedIdentityExtension) {
    // cloud-provider-azure uses userAssignedIdentityID for a user-assigned identity; empty = system-assigned.
    const mi = c.userAssignedIdentityID ?? cfg.clientId;
    return { kind: 'managed-identity', clientId: mi, authorityHost };
  }
  if (c.aadClientSecret !== undefined) {
    if (!tenantId || !clientId)
      throw new ConfigError(
        'azure.cloudConfigFile',
        `${file}: a client secret needs tenantId and aadClientId`,
      );
    return { kind: 'client-secret', tenantId, clientId, clientSecret: c.aadClientSecret, authorityHost };
  }
  if (c.aadClientCertPath !== undefined) {
    if (!tenantId || !clientId)
      throw new ConfigError(
        'azure.cloudConfigFile',
        `${file}: a client certificate needs tenantId and aadClientId`,
      );
    if (/\.(pfx|p12)$/i.test(c.aadClientCertPath) || c.aadClientCertPassword) {
      throw new ConfigError(
        'azure.cloudConfigFile',
        `${file}: aadClientCertPath must be an unencrypted PEM (certificate + private key); convert the PFX with: openssl pkcs12 -in cert.pfx -nodes -out cert.pem`,
      );
    }
    return {
      kind: 'client-certificate',
      tenantId,
      clientId,
      certificatePath: c.aadClientCertPath,
      authorityHost,
    };
  }
  throw new ConfigError(
    'azure.cloudConfigFile',
    `${file} names no identity: set useManagedIdentityExtension (with userAssignedIdentityID), aadClientSecret, aadClientCertPath or useFederatedWorkloadIdentityExtension`,
  );
}

function resolve(cfg: AzureConfig): Resolved {
  const kind =
    cfg.credential === 'auto'
      ? cfg.cloudConfigFile !== undefined
        ? 'azure-json'
        : 'default'
      : cfg.credential;
  switch (kind) {
    case 'azure-json':
      return fromCloudConfig(cfg);
    case 'client-secret': {
      const secret = readConfigText(
        cfg.clientSecretFile as string,
        'azure.clientSecretFile',
        'the client secret file',
      ).trim();
      if (!secret) throw new ConfigError('azure.clientSecretFile', `${cfg.clientSecretFile} is empty`);
      return {
        kind,
        tenantId: cfg.tenantId,
        clientId: cfg.clientId,
        clientSecret: secret,
        authorityHost: cfg.authorityHost,
      };
    }
    case 'client-certificate':
      return {
        kind,
        tenantId: cfg.tenantId,
        clientId: cfg.clientId,
        certificatePath: cfg.clientCertificateFile,
        authorityHost: cfg.authorityHost,
      };
    case 'workload-identity': {
      const tenantId = cfg.tenantId ?? process.env.AZURE_TENANT_ID;
      const clientId = cfg.clientId ?? process.env.AZURE_CLIENT_ID;
      const tokenFile = cfg.federatedTokenFile ?? process.env.AZURE_FEDERATED_TOKEN_FILE;
      if (!tenantId || !clientId || !tokenFile) {
        throw new ConfigError(
          'azure.credential',
          'workload-identity needs azure.tenantId, azure.clientId and azure.federatedTokenFile (or AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE, which the AKS webhook injects)',
        );
      }
      return { kind, tenantId, clientId, tokenFile, authorityHost: cfg.authorityHost };
    }
    case 'managed-identity':
      return { kind, clientId: cfg.clientId, authorityHost: cfg.authorityHost };
    case 'default':
      return {
        kind: 'default',
        tenantId: cfg.tenantId,
        clientId: cfg.clientId,
        authorityHost: cfg.authorityHost,
      };
  }
}

/** Options shared by every identity credential: authority, instance discovery, CA. */
function commonOptions(authorityHost: string | undefined, ca: string | undefined): Record<string, unknown> {
  const host = authorityHost?.replace(/\/+$/, '');
  return {
    ...(host ? { authorityHost: host } : {}),
    // MSAL validates the authority against login.microsoftonline.com's instance metadata; a private or
    // test authority cannot be validated that way.
    ...(host && !KNOWN_AUTHORITIES.has(host.toLowerCase()) ? { disableInstanceDiscovery: true } : {}),
    ...(ca ? { tlsOptions: { ca } } : {}),
  };
}

/**
 * AZURE_AUTHORITY_HOST (the Azure SDKs' own variable) behaves exactly like azure.authorityHost /
 * --azure-authority-host, including instance discovery off for a custom authority. The config wins.
 */
function authorityFromEnv(): string | undefined {
  const raw = process.env.AZURE_AUTHORITY_HOST?.trim();
  if (!raw) return undefined;
  if (!/^https:\/\/[^/?#\s]+\/?$/.test(raw)) {
    throw new ConfigError(
      'AZURE_AUTHORITY_HOST',
      `expected https://<host>, e.g. https://login.microsoftonline.us; got ${JSON.stringify(raw.slice(0, 100))} (or set azure.authorityHost)`,
    );
  }
  return raw;
}

export function buildCredential(
  cfg: AzureConfig,
  ca?: string,
  reload?: { logger: Logger; metrics: ProviderMetrics },
): BuiltCredential {
  const built = buildOnce(cfg, ca);
  if (!reload) return built;
  const files = watchedFiles(cfg, built.kind).map(
    ({ path, field, parse, expires }) =>
      new CredentialFile<unknown>({
        path,
        field,
        provider: 'azure',
        parse,
        expiresAt: expires,
        logger: reload.logger,
        metrics: reload.metrics,
      }),
  );
  if (files.length === 0) return built;
  return {
    ...built,
    credential: new ReloadingCredential(
      built.credential,
      files,
      () => buildOnce(cfg, ca),
      built.secrets,
      reload.logger,
    ),
  };
}

interface Watched {
  path: string;
  field: string;
  parse: (data: Buffer) => unknown;
  expires?: (v: unknown) => number | undefined;
}

/** The files a credential of this config is made from (resolved the way `resolve` does). */
function watchedFiles(cfg: AzureConfig, kind: IdentityKind): Watched[] {
  const jwt = (v: unknown): number | undefined => jwtExpiry(String(v));
  const out: Watched[] = [];
  if (cfg.cloudConfigFile !== undefined && (cfg.credential === 'auto' || cfg.credential === 'azure-json')) {
    const file = cfg.cloudConfigFile;
    out.push({
      path: file,
      field: 'azure.cloudConfigFile',
      parse: (data) => parseCloudConfig(data.toString('utf8'), file),
    });
  }
  const r = kind === 'default' || kind === 'managed-identity' ? undefined : resolve(cfg);
  if (r?.kind === 'client-secret' && cfg.clientSecretFile !== undefined && out.length === 0)
    out.push({ path: cfg.clientSecretFile, field: 'azure.clientSecretFile', parse: parseSecretText });
  if (r?.kind === 'client-certificate' && r.certificatePath)
    out.push({
      path: r.certificatePath,
      field: out.length ? 'azure.cloudConfigFile aadClientCertPath' : 'azure.clientCertificateFile',
      parse: parsePem(true),
    });
  if (r?.kind === 'workload-identity' && r.tokenFile)
    out.push({ path: r.tokenFile, field: 'azure.federatedTokenFile', parse: parseSecretText, expires: jwt });
  return out;
}

/**
 * A credential rebuilt from its files when they change: checked at every getToken (which the
 * SDK calls before each request; the access token itself stays cached inside the credential).
 */
export class ReloadingCredential implements TokenCredential {
  private versions: string;
  private generation = 0;

  constructor(
    private inner: TokenCredential,
    private readonly files: Array<CredentialFile<unknown>>,
    private readonly rebuild: () => BuiltCredential,
    private readonly secrets: string[],
    private readonly logger: Logger,
  ) {
    this.versions = this.check();
  }

  private check(): string {
    return this.files
      .map((f) => {
        try {
          f.get();
        } catch {
          // a bad new file: logged and counted by CredentialFile; the current credential stays
        }
        return f.version;
      })
      .join(':');
  }

  getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    this.refresh();
    return this.inner.getToken(scopes, options);
  }

  /**
   * Re-reads changed files and rebuilds the credential if they are good. Returns a generation
   * number that goes up with every rebuild (SDK clients holding cached tokens are then replaced).
   */
  refresh(): number {
    const versions = this.check();
    if (versions !== this.versions) {
      try {
        const next = this.rebuild();
        // New secrets join the scrub list; old ones stay in it (they may still appear in errors).
        for (const sec of next.secrets) if (!this.secrets.includes(sec)) this.secrets.push(sec);
        this.inner = next.credential;
        this.versions = versions;
        this.generation++;
      } catch (err) {
        this.versions = versions; // do not retry the same broken version on every call
        this.logger.warn(
          { provider: 'azure', err },
          'azure credential files changed but the credential cannot be rebuilt; keeping the current one',
        );
      }
    }
    return this.generation;
  }
}

function buildOnce(cfg: AzureConfig, ca?: string): BuiltCredential {
  const r = resolve(cfg);
  r.authorityHost ??= authorityFromEnv();
  const opts = commonOptions(r.authorityHost, ca);
  const authority = r.authorityHost ? ` via ${r.authorityHost}` : '';
  switch (r.kind) {
    case 'client-secret':
      return {
        kind: r.kind,
        credential: new ClientSecretCredential(
          r.tenantId as string,
          r.clientId as string,
          r.clientSecret as string,
          opts,
        ),
        description: `client secret for application ${r.clientId} in tenant ${r.tenantId}${authority}`,
        secrets: [r.clientSecret as string],
        authorityHost: r.authorityHost,
      };
    case 'client-certificate':
      // The SDK reads the PEM itself, at the first token: check it now, like every file in config.
      readConfigFile(
        r.certificatePath as string,
        cfg.credential === 'client-certificate' ? 'azure.clientCertificateFile' : 'azure.cloudConfigFile',
        cfg.credential === 'client-certificate' ? undefined : 'aadClientCertPath',
      );
      return {
        kind: r.kind,
        credential: new ClientCertificateCredential(
          r.tenantId as string,
          r.clientId as string,
          r.certificatePath as string,
          opts,
        ),
        description: `client certificate ${r.certificatePath} for application ${r.clientId} in tenant ${r.tenantId}${authority}`,
        secrets: [],
        authorityHost: r.authorityHost,
      };
    case 'workload-identity':
      return {
        kind: r.kind,
        credential: new WorkloadIdentityCredential({
          tenantId: r.tenantId,
          clientId: r.clientId,
          tokenFilePath: r.tokenFile,
          ...opts,
        }),
        description: `workload identity ${r.clientId} in tenant ${r.tenantId} (token file ${r.tokenFile})${authority}`,
        secrets: [],
        authorityHost: r.authorityHost,
      };
    case 'managed-identity':
      return {
        kind: r.kind,
        credential: r.clientId
          ? new ManagedIdentityCredential({ clientId: r.clientId, ...opts })
          : new ManagedIdentityCredential(opts),
        description: r.clientId
          ? `user-assigned managed identity ${r.clientId}`
          : 'system-assigned managed identity',
        secrets: [],
        authorityHost: r.authorityHost,
      };
    case 'default':
      return {
        kind: r.kind,
        credential: new DefaultAzureCredential({
          ...(r.tenantId ? { tenantId: r.tenantId } : {}),
          ...(r.clientId
            ? { managedIdentityClientId: r.clientId, workloadIdentityClientId: r.clientId }
            : {}),
          ...opts,
        }),
        description: `DefaultAzureCredential (environment, workload identity, managed identity)${authority}`,
        secrets: process.env.AZURE_CLIENT_SECRET ? [process.env.AZURE_CLIENT_SECRET] : [],
        authorityHost: r.authorityHost,
      };
  }
}

/**
 * Wraps a credential to feed the credential metrics: remaining token lifetime, and renewals (a
 * token with a new expiry) by outcome. Tokens themselves are never stored or logged.
 */
export class TrackedCredential implements TokenCredential {
  private expiresOn = 0;

  constructor(
    private readonly inner: TokenCredential,
    private readonly metrics: ProviderMetrics | undefined,
  ) {}

  async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    let token: AccessToken | null;
    try {
      token = await this.inner.getToken(scopes, options);
    } catch (err) {
      this.metrics?.credentialRenewals.inc({ provider: 'azure', outcome: 'error' });
      throw err;
    }
    if (token) {
      if (token.expiresOnTimestamp !== this.expiresOn)
        this.metrics?.credentialRenewals.inc({ provider: 'azure', outcome: 'ok' });
      this.expiresOn = token.expiresOnTimestamp;
      this.refreshTtl();
    }
    return token;
  }

  /** Updates the TTL gauge from the last token seen (called on every probe as well). */
  refreshTtl(now: number = Date.now()): void {
    if (this.expiresOn > 0)
      this.metrics?.credentialTtl.set({ provider: 'azure' }, Math.max(0, (this.expiresOn - now) / 1000));
  }
}
