/**
 * AWS KMS KEK provider factory. See provider.ts for the semantics and docs/providers/aws.md for
 * configuration, IAM policy, rotation and key-state behaviour.
 */
import { effectiveEncryptionContext, type AwsConfig } from '../../config/providers/aws.js';
import { InvalidInputError, readConfigFile } from '../errors.js';
import { RemoteCaller } from '../remote.js';
import { remoteRetry } from '../remote-config.js';
import type { KekProvider, ProviderDeps } from '../types.js';
import { createKmsClient } from './client.js';
import { createCredentialSource } from './credentials.js';
import { classifyAwsError } from './errors.js';
import { parseKeyIdentifier } from '../../config/providers/aws-identifiers.js';
import { AwsKmsProvider } from './provider.js';

export { AwsKmsProvider } from './provider.js';

export async function createProvider(config: AwsConfig, deps: ProviderDeps): Promise<KekProvider> {
  const identifier = parseKeyIdentifier(config.keyId);
  if ('error' in identifier) throw new InvalidInputError(`aws.keyId: ${identifier.error}`);
  const region = config.region || identifier.region;
  if (!region) {
    throw new InvalidInputError(
      'aws.region: required when aws.keyId is not an ARN; set aws.region or use the key ARN',
    );
  }
  const ca = config.caFile === undefined ? undefined : readConfigFile(config.caFile, 'aws.caFile');
  const credentials = await createCredentialSource({
    region,
    profile: config.profile,
    roleArn: config.roleArn,
    roleSessionName: config.roleSessionName,
    externalId: config.externalId,
    stsEndpoint: config.stsEndpoint,
    fips: config.fips,
    connectTimeoutMs: config.connectTimeout,
    requestTimeoutMs: config.attemptTimeout ?? 5000,
    ca,
    metrics: deps.metrics,
    logger: deps.logger,
  });
  const client = createKmsClient({
    region,
    endpoint: config.endpoint,
    fips: config.fips,
    credentials: credentials.provider,
    connectTimeoutMs: config.connectTimeout,
    ca,
  });
  const caller = new RemoteCaller({
    provider: 'aws',
    classify: (err, operation, subject) =>
      classifyAwsError(err, subject === undefined ? `aws ${operation}` : `aws ${operation} ${subject}`),
    metrics: deps.metrics,
    logger: deps.logger,
    retry: remoteRetry(config),
    concurrency: config.concurrency,
  });
  const where = config.endpoint ? ` via ${config.endpoint}` : config.fips ? ' (FIPS endpoint)' : '';
  const description = `AWS KMS ${identifier.raw} in ${region}${where}`;
  deps.logger.info(
    {
      provider: 'aws',
      role: deps.role,
      keyId: identifier.raw,
      region,
      credentialSource: credentials.description,
    },
    'AWS KMS provider configured',
  );
  return new AwsKmsProvider({
    client,
    credentials,
    identifier,
    region,
    encryptionContext: effectiveEncryptionContext(config),
    decryptKeyArns: config.decryptKeyArns,
    caller,
    description,
    logger: deps.logger,
    metrics: deps.metrics,
    role: deps.role,
  });
}
