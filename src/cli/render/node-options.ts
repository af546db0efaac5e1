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
