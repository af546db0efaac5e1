/**
 * Field helpers shared by the config schema and the per-provider sections: durations, octal
 * modes, file paths, and the flag table that maps CLI flags and env vars onto config paths.
 */
import { z } from 'zod';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses "250ms", "60s", "5m", "24h", "7d" or "1h30m" into milliseconds; undefined if malformed. */
export function parseDuration(text: string): number | undefined {
  const s = text.trim();
  if (!/^(\d+(\.\d+)?(ms|s|m|h|d))+$/.test(s)) return undefined;
  let total = 0;
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) total += Number(m[1]) * UNITS[m[2]];
  return Math.round(total);
}

/** A duration field: a string like "60s" (or a number of seconds) → milliseconds. */
export function duration(example: string, opts: { min?: number; max?: number } = {}) {
  return z.union([z.string(), z.number()]).transform((v, ctx) => {
    const ms = typeof v === 'number' ? Math.round(v * 1000) : parseDuration(v);
    if (ms === undefined || !Number.isFinite(ms)) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a duration like "${example}" (units ms, s, m, h, d); got ${JSON.stringify(v)}`,
      });
      return z.NEVER;
    }
    if (opts.min !== undefined && ms < opts.min) {
      ctx.addIssue({ code: 'custom', message: `must be at least ${opts.min} ms; got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    if (opts.max !== undefined && ms > opts.max) {
      ctx.addIssue({ code: 'custom', message: `must be at most ${opts.max} ms; got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return ms;
  });
}

/** A non-empty string with a message that says what is expected. */
export function nonEmpty(what: string) {
  return z
    .string({ error: `expected ${what}` })
    .trim()
    .min(1, { message: `must not be empty: set ${what}` });
}

/** An integer option that may arrive as a string from a flag or env var. */
export function int(what: string, min: number, max: number) {
  return z.coerce
    .number({ error: `expected ${what} (an integer)` })
    .int({ message: `expected ${what} (an integer)` })
    .min(min, { message: `must be at least ${min}` })
    .max(max, { message: `must be at most ${max}` });
}

/** A boolean that also accepts "true"/"false"/"1"/"0" from flags and env. */
export const bool = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0'])])
  .transform((v) => v === true || v === 'true' || v === '1');

export type FlagType = 'string' | 'boolean' | 'number' | 'list';

/**
 * One CLI flag, mapped onto a config path. Its env var is derived from the flag name:
 * `--aws-region` ↔ `KMS_PLUGIN_AWS_REGION`. Precedence: flag > env > file > defaults.
 */
export interface FlagSpec {
  /** Long flag name without dashes, e.g. "aws-region". */
  name: string;
  /** Config path it sets, e.g. ["aws", "region"]. */
  path: string[];
  type: FlagType;
  description: string;
  /** Placeholder in --help, e.g. "REGION". */
  arg?: string;
  /** Set on an old flag name kept as an alias: the flag to use instead (a deprecation warning is logged). */
  deprecatedFor?: string;
}

export function envName(flag: FlagSpec): string {
  return `KMS_PLUGIN_${flag.name.toUpperCase().replace(/-/g, '_')}`;
}

/**
 * Schema metadata that turns a config field into a CLI flag (and env var): `.meta({ flag: {...} })`.
 * The flag name comes from the config path (`aws.attemptTimeout` → `--aws-attempt-timeout`), its
 * type from the zod type; see flags.ts.
 */
export interface FlagMeta {
  /** One-line --help text (a provider's flags get "<provider> provider: " in front). */
  help: string;
  /** Placeholder in --help, e.g. "REGION". */
  arg?: string;
  /** Flag name when it is not the one derived from the path (names that predate the rule). */
  name?: string;
  /** Old flag names still accepted for this field, with a deprecation warning. */
  deprecatedNames?: readonly string[];
}

declare module 'zod' {
  interface GlobalMeta {
    flag?: FlagMeta;
  }
}

/** One entry of the provider catalog (providers/index.ts): a provider's config section. */
export interface ProviderSection<S extends z.ZodType = z.ZodType> {
  /** The `<provider>:` section. Fields with `.meta({ flag })` become `--<provider>-*` flags. */
  schema: S;
  /**
   * Old field names still accepted in this section, `old → new` (a dotted old name for a nested
   * field, e.g. "tls.caFile"). Each use logs a deprecation warning; docs/configuration.md lists them.
   */
  aliases?: Readonly<Record<string, string>>;
}

/**
 * The settings every remote provider has, under the same names in every section (they configure
 * the provider's RemoteCaller): `timeout`, `attemptTimeout`, `maxAttempts`, `concurrency`.
 * `caFile`, where a provider has TLS, is declared in its section with the same name.
 */
export function remoteCallFields(
  provider: string,
  o: {
    service: string;
    concurrency: { default: number; max: number; help?: string };
    /** Old flag names of attemptTimeout, still accepted (with a warning). */
    oldAttemptTimeoutFlags?: readonly string[];
  },
) {
  return {
    timeout: duration('10s', { min: 100, max: 300_000 })
      .default(10_000)
      .meta({
        description:
          'Deadline of one operation, all its attempts included, when the caller sets none. Calls from kube-apiserver carry their own deadline and probes use probe.timeout; this applies to the rest (e.g. CLI commands). Same name for every provider.',
        flag: { arg: 'DURATION', help: 'deadline of one operation when the caller sets none (default 10s)' },
      }),
    attemptTimeout: duration('2s', { min: 50, max: 60_000 })
      .optional()
      .meta({
        description:
          'Cap on one remote attempt, e.g. "2s". Default: none, an attempt may use all the time left before the caller\'s deadline (minus the reply reserve). Same name for every provider.',
        flag: {
          arg: 'DURATION',
          help: `cap on one ${o.service} attempt, e.g. 2s (default: the time left before the deadline)`,
          ...(o.oldAttemptTimeoutFlags ? { deprecatedNames: o.oldAttemptTimeoutFlags } : {}),
        },
      }),
    maxAttempts: int(`${provider}.maxAttempts`, 1, 10)
      .default(4)
      .meta({
        description:
          "Attempts per operation, including the first. Only throttling and transient failures (5xx, timeouts, connection failures) are retried, with jittered back-off, and only while a retry still fits in the caller's deadline. Same name for every provider.",
        flag: { arg: 'N', help: `attempts per ${o.service} operation inside the deadline (default 4)` },
      }),
    concurrency: int(`${provider}.concurrency`, 1, o.concurrency.max)
      .default(o.concurrency.default)
      .meta({
        description:
          o.concurrency.help ??
          `${o.service} calls in flight at once; more wait in line within their own deadlines (a cold-start burst queues instead of tripping throttling). Same name for every provider.`,
        flag: { arg: 'N', help: `concurrent ${o.service} calls (default ${o.concurrency.default})` },
      }),
  };
}
