/**
 * Progress for long-running commands (census, reencrypt).
 *
 *   - On a TTY: one line redrawn in place (at most every `redrawMs`): label, a bar when the total
 *     is known, count/total, rate and ETA; count and rate only while the total is unknown.
 *   - Otherwise: one JSON line every `everyN` items, plus one at the end, for log collectors and
 *     scripts: {"progress":label,"count":…,"total":…,"rate":…,"etaSeconds":…,…fields}.
 *
 * `fields` given to tick() are the latest values of extra columns (e.g. {resource:"secrets"});
 * they are shown on the bar and copied into JSON lines. Never pass secrets: the line is output.
 */

export type ProgressMode = 'bar' | 'json' | 'none';

export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  label: string;
  total?: number;
  stream: ProgressStream;
  /** JSON lines: one every this many items (default 1000). */
  everyN?: number;
  /** Force JSON lines even on a TTY. */
  json?: boolean;
  /** Override the mode chosen from the stream (e.g. 'none' for "no bar unless a TTY"). */
  mode?: ProgressMode;
  /** Minimum time between two redraws of the bar (default 100 ms). */
  redrawMs?: number;
  /** Clock in ms (tests). */
  now?: () => number;
}

export type ProgressFields = Record<string, string | number | boolean>;

export interface Progress {
  readonly mode: ProgressMode;
  readonly count: number;
  tick(n?: number, fields?: ProgressFields): void;
  setTotal(total: number): void;
  /** Final line (JSON) or final redraw plus newline (bar). Idempotent. */
  done(summary?: Record<string, unknown>): void;
}

export function chooseMode(stream: ProgressStream, json?: boolean): ProgressMode {
  if (json) return 'json';
  return stream.isTTY ? 'bar' : 'json';
}

export function createProgress(options: ProgressOptions): Progress {
  const now = options.now ?? (() => performance.now());
  const mode: ProgressMode = options.mode ?? chooseMode(options.stream, options.json);
  const everyN = Math.max(1, Math.floor(options.everyN ?? 1000));
  const redrawMs = options.redrawMs ?? 100;
  const started = now();
  let total = options.total;
  let count = 0;
  let nextJsonAt = everyN;
  let lastDraw = -Infinity;
  let finished = false;
  let fields: ProgressFields = {};

  const stats = (): { elapsed: number; rate: number; eta?: number } => {
    const elapsed = Math.max(0, (now() - started) / 1000);
    const rate = elapsed > 0 ? count / elapsed : 0;
    let eta: number | undefined;
    if (total !== undefined && rate > 0) eta = Math.max(0, (total - count) / rate);
    return { elapsed, rate, eta };
  };

  const jsonLine = (extra: Record<string, unknown>): void => {
    const s = stats();
    const line: Record<string, unknown> = {
      progress: options.label,
      count,
      ...(total !== undefined ? { total } : {}),
      rate: round(s.rate),
      ...(s.eta !== undefined ? { etaSeconds: Math.round(s.eta) } : {}),
      elapsedSeconds: round(s.elapsed),
      ...fields,
      ...extra,
    };
    options.stream.write(`${JSON.stringify(line)}\n`);
  };

  const draw = (final: boolean): void => {
    const s = stats();
    const parts: string[] = [options.label];
    if (total !== undefined && total > 0) {
      const frac = Math.min(1, count / total);
      const width = 24;
      const filled = Math.round(frac * width);
      parts.push(`[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`);
      parts.push(`${count}/${total}`, `${(frac * 100).toFixed(1)}%`);
    } else {
      parts.push(String(count));
    }
    parts.push(`${formatRate(s.rate)}/s`);
    if (!final && s.eta !== undefined) parts.push(`ETA ${formatDuration(s.eta)}`);
    if (final) parts.push(`in ${formatDuration(s.elapsed)}`);
    for (const [k, v] of Object.entries(fields)) parts.push(`${k}=${String(v)}`);
    let text = parts.join(' ');
    const cols = options.stream.columns;
    if (cols !== undefined && cols > 10 && text.length > cols - 1) text = text.slice(0, cols - 1);
    options.stream.write(`\r\x1b[2K${text}${final ? '\n' : ''}`);
    lastDraw = now();
  };

  return {
    mode,
    get count() {
      return count;
    },
    tick(n = 1, f?: ProgressFields) {
      if (finished) return;
      count += n;
      if (f) fields = { ...fields, ...f };
      if (mode === 'bar') {
        if (now() - lastDraw >= redrawMs) draw(false);
      } else if (mode === 'json' && count >= nextJsonAt) {
        jsonLine({});
        nextJsonAt = (Math.floor(count / everyN) + 1) * everyN;
      }
    },
    setTotal(t: number) {
      total = t;
    },
    done(summary?: Record<string, unknown>) {
      if (finished) return;
      finished = true;
      if (mode === 'bar') draw(true);
      else if (mode === 'json') jsonLine({ done: true, ...(summary ?? {}) });
    },
  };
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

export function formatRate(rate: number): string {
  if (rate >= 10_000) return `${(rate / 1000).toFixed(1)}k`;
  if (rate >= 100) return rate.toFixed(0);
  return rate.toFixed(1);
}

export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
