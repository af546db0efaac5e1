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
