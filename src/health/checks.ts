/**
 * The health data model: what a check says (HealthResult, HealthCheck), the last deep probe
 * (HealthReport) and what the HTTP endpoints need from the plugin (HealthView). view.ts builds
 * it, http-format.ts renders it, http.ts serves it; this module imports nothing.
 */
/** Result of a cheap, local check. `reason` is short, human-readable and never secret. */
export interface HealthResult {
  ok: boolean;
  reason?: string;
}

/** One named check in a report (`kek`, `dek`, `probe`, ...). */
export interface HealthCheck extends HealthResult {
  /** Short identifier: letters, digits, `-`, `_`, `.`. */
  name: string;
  /** Seconds since the check's data was last refreshed (e.g. since the last probe), if known. */
  ageSeconds?: number;
}

/** The last deep probe, as /healthz shows it. `ok` must equal "every check ok". */
export interface HealthReport {
  ok: boolean;
  checks: HealthCheck[];
}

/** What the HTTP layer needs from the plugin. All three must be synchronous and in-memory. */
export interface HealthView {
  /** Process-level liveness (e.g. not shutting down in a broken state). No I/O. */
  live(): HealthResult;
  /** A write DEK is ready and the gRPC socket is serving. */
  ready(): HealthResult;
  /** The last deep probe with per-check detail. */
  health(): HealthReport;
}
