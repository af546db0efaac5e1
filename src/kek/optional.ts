/**
 * Optional remote calls stay optional — one rule for every provider.
 *
 * Some calls only refine what the plugin knows (GCP ListCryptoKeyVersions finds a version newer
 * than the primary; AWS ListKeyRotations labels the current key material). When such a call is
 * refused (permission denied, unimplemented by the endpoint, rejected), the plugin starts and
 * serves without it, using the primary:
 * - one warning naming the missing permission (again only if it recovers and fails again);
 * - kms_plugin_optional_call_unavailable{provider,call} = 1 while it is skipped;
 * - listed by `issues()` for /healthz?verbose;
 * - retried at most once per `retryMs` (default one hour), not on every probe.
 * A transient failure (unavailable, throttled, deadline) also yields "unknown" for this probe, but
 * is retried on the next one and not reported as missing permission.
 */
import { asPluginError, type PluginError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { ProviderMetrics } from '../observability/metrics.js';

export const OPTIONAL_RETRY_MS = 3_600_000;

export interface OptionalCallIssue {
  provider: string;
  /** The remote operation, e.g. `listCryptoKeyVersions`. */
  call: string;
  /** The permission that would make it work, e.g. `cloudkms.cryptoKeyVersions.list`. */
  permission: string;
  kind: string;
  message: string;
  since: number;
  nextTryAt: number;
}

const TRANSIENT = new Set(['unavailable', 'throttled', 'deadline', 'cancelled']);

export class OptionalCalls {
  private readonly issuesByCall = new Map<string, OptionalCallIssue>();
  private readonly now: () => number;
  private readonly retryMs: number;

  constructor(
    private readonly options: {
      provider: string;
      logger: Logger;
      metrics?: ProviderMetrics;
      retryMs?: number;
      now?: () => number;
    },
  ) {
    this.now = options.now ?? Date.now;
    this.retryMs = options.retryMs ?? OPTIONAL_RETRY_MS;
  }

  /**
   * Runs `fn` unless `call` was refused less than `retryMs` ago. Resolves `fn`'s value, or
   * `undefined` when the call is skipped or fails (it never rejects, except for a bug in `fn`'s
   * caller's own signal handling, which it leaves to the caller).
   */
  async run<T>(call: string, permission: string, fn: () => Promise<T>): Promise<T | undefined> {
    const { provider, logger, metrics } = this.options;
    const known = this.issuesByCall.get(call);
    if (known && this.now() < known.nextTryAt) return undefined;
    let value: T;
    try {
      value = await fn();
    } catch (err) {
      const e: PluginError = asPluginError(err);
      if (TRANSIENT.has(e.kind)) {
        logger.debug(
          { provider, call, kind: e.kind },
          'optional KMS call failed transiently; skipped this time',
        );
        return undefined;
      }
      const now = this.now();
      this.issuesByCall.set(call, {
        provider,
        call,
        permission,
        kind: e.kind,
        message: e.message.length > 300 ? `${e.message.slice(0, 300)}…` : e.message,
        since: known?.since ?? now,
        nextTryAt: now + this.retryMs,
      });
      metrics?.optionalCallUnavailable.set({ provider, call }, 1);
      if (!known) {
        logger.warn(
          { provider, call, permission, err: e, retryInSeconds: Math.round(this.retryMs / 1000) },
          `optional KMS call ${call} refused (${e.kind}): serving with the primary version without it; grant ${permission} to enable it (retried at most hourly)`,
        );
      }
      return undefined;
    }
    if (known) {
      this.issuesByCall.delete(call);
      metrics?.optionalCallUnavailable.set({ provider, call }, 0);
      logger.info({ provider, call }, `optional KMS call ${call} works again`);
    }
    return value;
  }

  /** Optional calls currently skipped (for /healthz?verbose and `probe`). */
  issues(): OptionalCallIssue[] {
    return [...this.issuesByCall.values()];
  }
}
