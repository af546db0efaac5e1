/**
 * The HealthView the HTTP endpoints render, computed from the watcher's in-memory snapshot.
 * Synchronous, no I/O: /livez, /readyz and /healthz can never amplify into KMS calls.
 */
import type { HealthCheck, HealthView } from './http.js';
import type { KekWatcher } from './watcher.js';

export interface HealthViewSources {
  watcher: KekWatcher;
  server: { inFlightCalls: number };
  now?: () => number;
}

export function createHealthView({ watcher, now = Date.now }: HealthViewSources): HealthView {
  return {
    live: () => ({ ok: true }),
    ready: () => {
      const s = watcher.snapshot();
      if (!s.primed) return { ok: false, reason: 'no data key yet (first KEK probe has not succeeded)' };
      return { ok: true };
    },
    health: () => {
      const s = watcher.snapshot();
      const status = watcher.status();
      const age = (t: number | undefined): number | undefined =>
        t === undefined ? undefined : Math.max(0, (now() - t) / 1000);
      const checks: HealthCheck[] = [
        { name: 'dek', ok: s.primed, reason: s.primed ? undefined : 'no data key yet' },
        {
          name: 'kek-state',
          ok: s.kekState === 'enabled',
          reason:
            s.kekState === 'enabled'
              ? undefined
              : `kek ${s.kekState ?? 'unknown'}${s.kekStateDetail ? `: ${s.kekStateDetail}` : ''}`,
        },
        {
          name: 'kek-probe',
          ok: status.ok && status.healthz === 'ok',
          reason: status.ok ? (status.healthz === 'ok' ? undefined : status.healthz) : status.error.message,
          ageSeconds: age(s.lastGoodProbeAt),
        },
      ];
      if (s.rollbackRefused) {
        // A warning, not a failure (the plugin keeps serving), but it says why.
        checks.push({
          name: 'kek-rollback',
          ok: true,
          reason: `refusing rollback: remote primary is older version ${s.rollbackRefused.version}; keeping ${s.kek?.version ?? '?'} (key_ids are never reused)`,
        });
      }
      for (const issue of s.optionalIssues ?? []) {
        checks.push({
          name: `optional-${issue.call}`,
          ok: true,
          reason: `skipped (${issue.kind}): grant ${issue.permission}; next try in ${Math.max(0, Math.round((issue.nextTryAt - now()) / 60_000))} min`,
        });
      }
      return { ok: checks.every((c) => c.ok), checks };
    },
  };
}
