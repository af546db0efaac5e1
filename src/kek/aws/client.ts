/**
 * Builds the KMS client. Its own retries are OFF (one attempt per send): RemoteCaller does the
 * deadline-aware retrying, and the SDK's default budget (1 s throttling base, several attempts)
 * does not fit inside kube-apiserver's KMS deadline. Every send carries the attempt's abortSignal
 * and, as its `requestTimeout`, the attempt's time left (RemoteCaller's `attemptTimeLeftMs`);
 * `throwOnRequestTimeout` makes that timeout fail the request instead of only logging a warning.
 */
import { KMSClient } from '@aws-sdk/client-kms';
import { ConfiguredRetryStrategy } from '@smithy/util-retry';
import type { CredentialProvider } from './credentials.js';

export interface KmsClientOptions {
  region: string;
  endpoint?: string;
  fips: boolean;
  credentials: CredentialProvider;
  connectTimeoutMs: number;
  /** PEM CA bundle replacing the system roots (config aws.caFile). */
  ca?: Buffer;
}

export function createKmsClient(options: KmsClientOptions): KMSClient {
  return new KMSClient({
    region: options.region,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    useFipsEndpoint: options.fips,
    credentials: options.credentials,
    retryStrategy: new ConfiguredRetryStrategy(1, 0),
    requestHandler: {
      connectionTimeout: options.connectTimeoutMs,
      throwOnRequestTimeout: true,
      ...(options.ca ? { httpsAgent: { ca: options.ca } } : {}),
    },
    customUserAgent: 'k8s-kms-plugin',
  });
}
