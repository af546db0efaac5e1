/**
 * The gate before reencrypt's first write. Rewriting objects helps only once every
 * kube-apiserver encrypts with the new key, so:
 *
 * 1. `--wait-for-key-id ID`: poll every plugin replica until each reports ID, either from its
 *    /metrics (`kms_plugin_key_id_info{key_id=…} 1`, and `kms_plugin_key_id_last_change_timestamp_seconds`
 *    for when it switched) or by calling Status over its KMS v2 socket.
 * 2. Wait out the apiserver's write window (default 3m) counted from the moment the last replica
 *    switched (from the metric when every replica exposes it, else from when we saw them all on ID):
 *    an apiserver may keep encrypting with the DEK it derived before the switch for that long.
 */
import { KmsClient } from '../../server/client.js';
import { PluginError } from '../../errors.js';
import type { Clock } from './ratelimit.js';

export interface ReplicaReport {
  replica: string;
  /** key_ids the replica currently reports (normally exactly one). */
  keyIds: string[];
  /** When the replica adopted its current key_id (epoch ms), if it says. */
  changedAt?: number;
  error?: string;
}

export interface Replica {
  readonly name: string;
  report(timeoutMs: number): Promise<ReplicaReport>;
  close?(): void;
}

const KEY_ID_INFO = 'kms_plugin_key_id_info';
const KEY_ID_CHANGED = 'kms_plugin_key_id_last_change_timestamp_seconds';

/** Reads the key_id info and last-change metrics from a Prometheus text exposition. */
export function parseKeyIdMetrics(text: string): { keyIds: string[]; changedAt?: number } {
  const keyIds: string[] = [];
  let changedAt: number | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${KEY_ID_INFO}{`)) {
      const close = line.lastIndexOf('}');
      if (close < 0) continue;
      const value = Number(
        line
          .slice(close + 1)
          .trim()
          .split(/\s+/)[0],
      );
      if (value !== 1) continue;
      const m = /(?:^|[{,])key_id="((?:[^"\\]|\\.)*)"/.exec(line.slice(KEY_ID_INFO.length, close + 1));
      if (m) keyIds.push(m[1].replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c)));
    } else if (line.startsWith(`${KEY_ID_CHANGED} `) || line.startsWith(`${KEY_ID_CHANGED}{`)) {
      const v = Number(line.trim().split(/\s+/).pop());
      if (Number.isFinite(v) && v > 0) changedAt = v * 1000;
    }
  }
  return { keyIds, changedAt };
}

export class MetricsReplica implements Replica {
  readonly name: string;
  private readonly url: string;

  constructor(url: string) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new PluginError('invalid_input', `--plugin-metrics: ${JSON.stringify(url)} is not a URL`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:')
      throw new PluginError('invalid_input', `--plugin-metrics: ${url} is not an http(s) URL`);
    if (u.pathname === '/' || u.pathname === '') u.pathname = '/metrics';
    this.url = u.toString();
    this.name = this.url;
  }

  async report(timeoutMs: number): Promise<ReplicaReport> {
    try {
      const res = await fetch(this.url, { signal: AbortSignal.timeout(timeoutMs) });
      const text = await res.text();
      if (!res.ok) return { replica: this.name, keyIds: [], error: `HTTP ${res.status}` };
      const m = parseKeyIdMetrics(text);
      if (m.keyIds.length === 0)
        return {
          replica: this.name,
          keyIds: [],
          error: `no ${KEY_ID_INFO} metric (not the plugin's /metrics?)`,
        };
      return { replica: this.name, ...m };
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      return { replica: this.name, keyIds: [], error: cause ?? (err as Error).name ?? 'unreachable' };
    }
  }
}

export class SocketReplica implements Replica {
  private client: KmsClient | undefined;
  constructor(readonly name: string) {}

  async report(timeoutMs: number): Promise<ReplicaReport> {
    this.client ??= new KmsClient(this.name, { waitForReady: false });
    try {
      const s = await this.client.status(timeoutMs);
      return { replica: this.name, keyIds: s.key_id ? [s.key_id] : [] };
    } catch (err) {
      return {
        replica: this.name,
        keyIds: [],
        error: (err as { details?: string }).details || (err as Error).message,
      };
    }
  }

  close(): void {
    this.client?.close();
  }
}

export interface GateOptions {
  keyId: string;
  replicas: Replica[];
  intervalMs: number;
  timeoutMs: number;
  clock: Clock;
  signal?: AbortSignal;
  log(line: string): void;
  /** Wall clock (epoch ms), for change timestamps. */
  wallNow?: () => number;
}

export type GateResult = { ok: true; adoptedAt: number } | { ok: false; reason: string };

/** Polls every replica until each reports `keyId`; logs who is still behind whenever that changes. */
export async function waitForKeyId(o: GateOptions): Promise<GateResult> {
  const wall = o.wallNow ?? Date.now;
  const start = o.clock.now();
  let lastLine = '';
  o.log(`waiting until every plugin replica (${o.replicas.length}) reports key_id ${o.keyId}`);
  for (;;) {
    const reports = await Promise.all(
      o.replicas.map((r) => r.report(Math.min(5000, o.intervalMs * 2 + 1000))),
    );
    const behind = reports.filter((r) => !(r.keyIds.length === 1 && r.keyIds[0] === o.keyId));
    if (behind.length === 0) {
      const now = wall();
      const times = reports.map((r) => r.changedAt);
      const adoptedAt = times.every((t): t is number => t !== undefined)
        ? Math.min(now, Math.max(...times))
        : now;
      o.log(`all ${reports.length} replicas report key_id ${o.keyId}`);
      return { ok: true, adoptedAt };
    }
    const line = behind.map(describe).join('; ');
    if (line !== lastLine) {
      o.log(`still waiting for ${behind.length}/${reports.length}: ${line}`);
      lastLine = line;
    }
    if (o.clock.now() - start >= o.timeoutMs) {
      return {
        ok: false,
        reason: `not every replica reports key_id ${o.keyId} after ${formatDuration(o.timeoutMs)}: ${line}`,
      };
    }
    await o.clock.sleep(o.intervalMs, o.signal);
    if (o.signal?.aborted) return { ok: false, reason: 'interrupted' };
  }
}

function describe(r: ReplicaReport): string {
  if (r.error) return `${r.replica} (${r.error})`;
  return `${r.replica} reports ${r.keyIds.join(', ') || 'no key_id'}`;
}

export interface WindowOptions {
  /** When the last replica switched (epoch ms). */
  adoptedAt: number;
  windowMs: number;
  clock: Clock;
  signal?: AbortSignal;
  log(line: string): void;
  wallNow?: () => number;
  /** How often to say how long is left. */
  reportEveryMs?: number;
}

/** Sleeps until adoptedAt + windowMs, saying what for and how long. False if interrupted. */
export async function waitWriteWindow(o: WindowOptions): Promise<boolean> {
  const wall = o.wallNow ?? Date.now;
  const end = o.adoptedAt + o.windowMs;
  let left = end - wall();
  if (left <= 0) {
    o.log(
      `the apiserver write window (${formatDuration(o.windowMs)}) after the key switch at ${iso(o.adoptedAt)} has already passed`,
    );
    return true;
  }
  o.log(
    `waiting out the apiserver write window: ${formatDuration(o.windowMs)} after the key switch at ${iso(o.adoptedAt)}, ` +
      `so apiservers stop writing with the old DEK; ${formatDuration(left)} left (until ${iso(end)})`,
  );
  const every = o.reportEveryMs ?? 30_000;
  while (left > 0) {
    await o.clock.sleep(Math.min(left, every), o.signal);
    if (o.signal?.aborted) return false;
    left = end - wall();
    if (left > 0) o.log(`write window: ${formatDuration(left)} left`);
  }
  o.log('write window passed');
  return true;
}

export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m${sec ? `${String(sec).padStart(2, '0')}s` : ''}`;
  if (m > 0) return sec ? `${m}m${String(sec).padStart(2, '0')}s` : `${m}m`;
  return `${sec}s`;
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
