/**
 * The HealthView the HTTP endpoints render, computed from the watcher's in-memory snapshot.
 * Synchronous, no I/O: /livez, /readyz and /healthz can never amplify into KMS calls.
 */
import type { HealthCheck, HealthView } from './checks.js';
import type { KekWatcher } from './watcher.js';
import type { LoadedVersion } from '../kek/types.js';

export interface HealthViewSources {
  watcher: KekWatcher;
  /** Key versions held in memory (local key file), shown as the `kek-versions` check. */
  loadedVersions?: () => LoadedVersion[] | undefined;
  now?: () => number;
}

/** "write 3, decrypt 1 2, staged 4" */
export function describeLoaded(versions: readonly LoadedVersion[]): string {
  const parts: string[] = [];
  for (const use of ['write', 'decrypt', 'staged'] as const) {
    const vs = versions.filter((v) => v.use === use).map((v) => v.version);
    if (vs.length > 0) parts.push(`${use} ${vs.join(' ')}`);
  }
  return parts.join(', ');
}

export function createHealthView({ watcher, loadedVersions, now = Date.now }: HealthViewSources): HealthView {
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
      const loaded = loadedVersions?.();
      if (loaded && loaded.length > 0) {
        checks.push({ name: 'kek-versions', ok: true, reason: `loaded: ${describeLoaded(loaded)}` });
      }
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
