/**
 * Credentials for the KMS client: the SDK's default chain (env, SSO, web identity/IRSA, shared
 * config, container credentials/EKS Pod Identity/ECS, instance profile), optionally with a role
 * assumed on top (sts:AssumeRole). Fetches are counted and the credential's remaining lifetime is
 * exported as a metric. Credentials themselves are never logged or put into errors.
 *
 * Web identity (IRSA): the SDK reads AWS_WEB_IDENTITY_TOKEN_FILE afresh at every credential fetch
 * (test/backend/aws-credentials.test.ts proves it), so a rotated projected token is used at the
 * next refresh. The file is also followed through CredentialFile, for the reload metric and log.
 * If a refresh fails (e.g. STS refuses a bad new token), the SDK keeps using the credentials it
 * holds until they expire (same test).
 */
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import type { Logger } from '../../observability/logger.js';
import { CredentialFile, jwtExpiry, parseSecretText } from '../credential-file.js';
import type { ProviderMetrics } from '../../observability/metrics.js';

export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  readonly expiration?: Date;
}
export type CredentialProvider = () => Promise<AwsCredentials>;

export interface CredentialOptions {
  region: string;
  profile?: string;
  roleArn?: string;
  roleSessionName: string;
  externalId?: string;
  stsEndpoint?: string;
  fips: boolean;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  /** PEM CA bundle for the STS endpoint (config aws.caFile). */
  ca?: Buffer;
  metrics: ProviderMetrics;
  logger: Logger;
}

export interface CredentialSource {
  provider: CredentialProvider;
  /** Expiry of the last credential handed out, if it has one. */
  expiration(): Date | undefined;
  /** Non-secret description for logs: "default chain" or "default chain + assume role ARN". */
  description: string;
  close(): void;
}

/** Refresh assumed-role credentials this long before they expire. */
const REFRESH_MARGIN_MS = 5 * 60_000;
const ASSUME_ROLE_SECONDS = 3600;

export async function createCredentialSource(options: CredentialOptions): Promise<CredentialSource> {
  // One try per fetch (the SDK would otherwise sleep `timeout` between up to 3 retries of the
  // container/instance endpoints); RemoteCaller retries within the caller's deadline.
  const chain = defaultProvider({
    ...(options.profile ? { profile: options.profile } : {}),
    timeout: options.connectTimeoutMs,
    maxRetries: 0,
  }) as CredentialProvider;
  let lastExpiration: Date | undefined;
  const tokenPath = process.env.AWS_WEB_IDENTITY_TOKEN_FILE;
  const tokenFile = tokenPath
    ? new CredentialFile({
        path: tokenPath,
        field: 'AWS_WEB_IDENTITY_TOKEN_FILE',
        provider: 'aws',
        parse: parseSecretText,
        expiresAt: jwtExpiry,
        logger: options.logger,
        metrics: options.metrics,
      })
    : undefined;
  const checkTokenFile = (): void => {
    try {
      tokenFile?.get();
    } catch {
      // the SDK reports an unreadable token file itself
    }
  };
  const record = (creds: AwsCredentials): AwsCredentials => {
    lastExpiration = creds.expiration;
    options.metrics.credentialRenewals.inc({ provider: 'aws', outcome: 'ok' });
    updateTtl(options.metrics, creds.expiration);
    return creds;
  };
  const failed = (err: unknown): never => {
    options.metrics.credentialRenewals.inc({ provider: 'aws', outcome: 'error' });
    throw err;
  };

  if (!options.roleArn) {
    return {
      provider: () => {
        checkTokenFile();
        return chain().then(record, failed);
      },
      expiration: () => lastExpiration,
      description: options.profile
        ? `default credential chain (profile ${options.profile})`
        : 'default credential chain',
      close: () => undefined,
    };
  }

  // Loaded only when a role is configured (the SDK's own STS client, used by its credential providers).
  const { STSClient, AssumeRoleCommand } = await import('@aws-sdk/nested-clients/sts');
  const sts = new STSClient({
    region: options.region,
    ...(options.stsEndpoint ? { endpoint: options.stsEndpoint } : {}),
    useFipsEndpoint: options.fips && !options.stsEndpoint,
    credentials: () => {
      checkTokenFile();
      return chain();
    },
    maxAttempts: 2,
    requestHandler: {
      connectionTimeout: options.connectTimeoutMs,
      requestTimeout: Math.max(options.requestTimeoutMs, 2000),
      throwOnRequestTimeout: true,
      ...(options.ca ? { httpsAgent: { ca: options.ca } } : {}),
    },
  });
  const roleArn = options.roleArn;
  let cached: AwsCredentials | undefined;
  let inFlight: Promise<AwsCredentials> | undefined;
  const assume = async (): Promise<AwsCredentials> => {
    const out = await sts.send(
      new AssumeRoleCommand({
        RoleArn: roleArn,
        RoleSessionName: options.roleSessionName,
        DurationSeconds: ASSUME_ROLE_SECONDS,
        ...(options.externalId ? { ExternalId: options.externalId } : {}),
      }),
    );
    const c = out.Credentials;
    if (!c?.AccessKeyId || !c.SecretAccessKey) {
      throw Object.assign(new Error(`sts:AssumeRole for ${roleArn} returned no credentials`), {
        name: 'CredentialsProviderError',
      });
    }
    options.logger.info(
      { provider: 'aws', roleArn, expiration: c.Expiration?.toISOString() },
      'assumed IAM role for AWS KMS',
    );
    return {
      accessKeyId: c.AccessKeyId,
      secretAccessKey: c.SecretAccessKey,
      sessionToken: c.SessionToken,
      expiration: c.Expiration,
    };
  };
  const provider: CredentialProvider = () => {
    if (cached && (!cached.expiration || cached.expiration.getTime() - Date.now() > REFRESH_MARGIN_MS)) {
      return Promise.resolve(cached);
    }
    inFlight ??= assume()
      .then((creds) => {
        cached = creds;
        return record(creds);
      }, failed)
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  };
  return {
    provider,
    expiration: () => lastExpiration,
    description: `default credential chain, then sts:AssumeRole ${roleArn}`,
    close: () => sts.destroy(),
  };
}

export function updateTtl(metrics: ProviderMetrics, expiration: Date | undefined): void {
  if (expiration)
    metrics.credentialTtl.set({ provider: 'aws' }, Math.max(0, (expiration.getTime() - Date.now()) / 1000));
}
