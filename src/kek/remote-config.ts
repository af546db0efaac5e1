/**
 * The common settings of every remote provider's config section (`timeout`, `attemptTimeout`,
 * `maxAttempts`, `concurrency`; see remoteCallFields in src/config/fields.ts) mapped onto
 * RemoteCaller options in one place. A setting left out (a config built without the schema, as
 * some tests do) keeps RemoteCaller's default.
 */
import type { RetryPolicy } from './remote.js';

export interface RemoteCallSettings {
  timeout?: number;
  attemptTimeout?: number;
  maxAttempts?: number;
  concurrency?: number;
}

export function remoteRetry(config: RemoteCallSettings): Partial<RetryPolicy> {
  const retry: Partial<RetryPolicy> = {};
  if (config.timeout !== undefined) retry.defaultDeadlineMs = config.timeout;
  if (config.attemptTimeout !== undefined) retry.attemptTimeoutMs = config.attemptTimeout;
  if (config.maxAttempts !== undefined) retry.maxAttempts = config.maxAttempts;
  return retry;
}
