/**
 * The environment the shipped manifests (Dockerfile, static pod, sidecar, systemd unit) start the
 * plugin with. One place, so the manifests, the docs and `npm run bench:compare` agree.
 * Measured in docs/benchmarks.md ("Shipped runtime settings").
 */

/**
 * V8 flags, as NODE_OPTIONS.
 * - `--max-old-space-size=256`: the heap limit Node already picks inside the static pod's 256 MiB
 *   memory limit (Node sizes the heap from the cgroup limit), made explicit so every deployment
 *   (systemd, `docker run` without a limit) behaves like the pod. On a large host the default
 *   limit is ~4 GB and V8 then lets the old generation grow to 2–3× the live heap before
 *   collecting; at 256 MiB it collects at ~1.5× (the live heap under saturation is ~15 MB).
 * - `--max-semi-space-size=4`: a young generation of at most 4 MiB per semi-space. A gRPC call
 *   allocates ~20 KB, so at 1 MiB the scavenger ran every ~45 calls and took ~30% of the CPU
 *   under load; 4 MiB runs it a quarter as often for ~4 MB more RSS.
 */
export const SHIPPED_NODE_OPTIONS = '--max-semi-space-size=4 --max-old-space-size=256';

/**
 * glibc malloc arenas. glibc gives each thread that allocates (libuv's pool, V8's GC helpers) its
 * own arena, each keeping freed memory; two arenas are enough for one JavaScript thread.
 */
export const SHIPPED_MALLOC_ARENA_MAX = '2';

/** Every environment variable the shipped manifests set for the plugin process, in this order. */
export const SHIPPED_ENV: ReadonlyArray<{ readonly name: string; readonly value: string }> = [
  { name: 'NODE_OPTIONS', value: SHIPPED_NODE_OPTIONS },
  { name: 'MALLOC_ARENA_MAX', value: SHIPPED_MALLOC_ARENA_MAX },
];

/**
 * V8 flags `serve` sets on itself when it starts (v8.setFlagsFromString), because Node refuses them
 * in NODE_OPTIONS. Read by V8 at every collection, so setting them at start-up is as good as the
 * command line.
 * - `--heap-growing-percent=100`: after a full collection the old generation may grow to twice
 *   the live heap before the next one. Under a 256 MB limit V8 otherwise allows only ~1.1×, so
 *   under saturation a full collection came every ~150 ms and cost 15–18% of the CPU per call and
 *   most of the p99; with 100 it runs about half as often, for ~10 MB more RSS under saturation
 *   and none at kube-apiserver's real cadence (docs/benchmarks.md).
 * A flag given on the node command line wins (`node --heap-growing-percent=0 …` restores V8's
 * own choice).
 */
export const SERVE_V8_FLAGS: ReadonlyArray<string> = ['--heap-growing-percent=100'];

/** The flag's name as V8 reads it (dashes and underscores are the same to V8). */
function flagName(flag: string): string {
  return flag
    .replace(/^--(no-)?/, '')
    .split('=')[0]
    .replace(/_/g, '-');
}

/**
 * Applies SERVE_V8_FLAGS, except those the node command line (`execArgv`) already sets; returns
 * the flags applied.
 */
export function applyServeV8Flags(
  execArgv: ReadonlyArray<string>,
  setFlags: (flags: string) => void,
): string[] {
  const given = new Set(execArgv.filter((a) => a.startsWith('--')).map(flagName));
  const applied = SERVE_V8_FLAGS.filter((f) => !given.has(flagName(f)));
  for (const f of applied) setFlags(f);
  return applied;
}
