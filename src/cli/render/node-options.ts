/**
 * The V8 flags the shipped manifests (static pod, systemd unit, Dockerfile) start the plugin with,
 * as NODE_OPTIONS. One place, so the manifests, the docs and `npm run bench:compare` agree.
 * Measured in docs/benchmarks.md ("V8 flags").
 */
export const SHIPPED_NODE_OPTIONS = '--max-semi-space-size=1';
