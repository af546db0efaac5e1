/**
 * Kubernetes-style health bodies:
 *
 *   ok                                   (success, not verbose)
 *   [+]ping ok                           (verbose, one line per check)
 *   [+]kek-versions ok: loaded: write 2, staged 3   (verbose: an ok check's note, if any)
 *   [-]kek failed: probe failed (unavailable) 75s ago
 *   healthz check failed
 *
 * Reasons come from the HealthView, which must only put short, non-secret text there; this
 * module is the second line of defence: one line, printable ASCII, bounded length.
 */
import type { HealthCheck } from './checks.js';

/** Longest reason printed; anything longer is cut (reasons are summaries, not error dumps). */
export const MAX_REASON_CHARS = 160;

export function sanitizeReason(reason: string | undefined): string {
  if (!reason) return '';
  const oneLine = reason
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f-\uffff]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return oneLine.length > MAX_REASON_CHARS ? `${oneLine.slice(0, MAX_REASON_CHARS - 3)}...` : oneLine;
}

/** Check names are identifiers we choose; anything else is replaced so the body stays parseable. */
export function sanitizeName(name: string): string {
  const clean = name.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 63);
  return clean || 'check';
}

export interface RenderOptions {
  /** `?verbose`: list every check with its reason. */
  verbose: boolean;
  /** The endpoint's name, for the last line (`livez`, `readyz`, `healthz`). */
  endpoint: string;
}

export function renderChecks(
  checks: readonly HealthCheck[],
  opts: RenderOptions,
): { ok: boolean; body: string } {
  const ok = checks.every((c) => c.ok);
  if (ok && !opts.verbose) return { ok, body: 'ok\n' };
  const lines = checks.map((c) => {
    const name = sanitizeName(c.name);
    const age =
      c.ageSeconds !== undefined && Number.isFinite(c.ageSeconds)
        ? ` (${Math.max(0, Math.round(c.ageSeconds))}s ago)`
        : '';
    if (c.ok) {
      if (!opts.verbose) return `[+]${name} ok`;
      const info = sanitizeReason(c.reason);
      return `[+]${name} ok${info ? `: ${info}` : ''}${age}`;
    }
    // Like kube-apiserver: the reason is shown only when asked for (?verbose).
    const reason = opts.verbose ? sanitizeReason(c.reason) || 'not ok' : 'reason withheld';
    return `[-]${name} failed: ${reason}${opts.verbose ? age : ''}`;
  });
  lines.push(`${opts.endpoint} check ${ok ? 'passed' : 'failed'}`);
  return { ok, body: `${lines.join('\n')}\n` };
}
