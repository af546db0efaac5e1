/** Shared by the local key-file unit tests (kek/local/*, cli/keygen): provider deps and config. */
import type { LocalConfig } from '../../../../src/config/providers/local.js';
import type { ProviderDeps } from '../../../../src/kek/types.js';
import { silentLogger } from '../../../../src/observability/logger.js';
import { Metrics } from '../../../../src/observability/metrics.js';

export const deps = (): ProviderDeps => ({
  logger: silentLogger(),
  metrics: new Metrics({ processMetrics: false }),
  role: 'primary',
});

/** A local provider config for `keyFile`; every option off unless `over` sets it. */
export const localConfig = (keyFile: string, over: Partial<LocalConfig> = {}): LocalConfig => ({
  keyFile,
  allowInsecurePermissions: false,
  createIfMissing: false,
  watch: false,
  ...over,
});

/** The error `fn` throws or rejects with (fails when it does not). */
export async function errorOf(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error');
}
