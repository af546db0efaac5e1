/**
 * The server's "retry after" hint on a failed remote call, for every backend, in one place.
 * RemoteCaller reads it from the raw error an attempt threw (before classification drops the
 * response) and waits it out when it fits before the caller's deadline.
 *
 * Understood:
 * - HTTP headers `retry-after-ms` and `x-ms-retry-after-ms` (milliseconds; Azure), and
 *   `Retry-After` (delta-seconds or an HTTP-date; RFC 9110 §10.2.3), found on
 *   - `err.response.headers` with `get()` (Azure's RestError),
 *   - `err.headers` (a Headers-like object with `get()`, or a plain record: VaultHttpError),
 *   - `err.$response.headers` (a plain record: AWS SDK service errors);
 * - gRPC `google.rpc.RetryInfo` in `err.statusDetails` (google-gax decodes it from
 *   `grpc-status-details-bin`): `retryDelay { seconds, nanos }`.
 */

type HeaderGetter = (name: string) => string | undefined;

const MS_HEADERS = ['retry-after-ms', 'x-ms-retry-after-ms'];
const NUMBER = /^\d+(\.\d+)?$/;

/** Milliseconds the server asked us to wait before retrying, if `err` carries such a hint. */
export function retryAfterMs(err: unknown, now: number = Date.now()): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as {
    response?: { headers?: unknown };
    headers?: unknown;
    $response?: { headers?: unknown };
    statusDetails?: unknown;
  };
  for (const headers of [e.response?.headers, e.headers, e.$response?.headers]) {
    const get = getter(headers);
    if (!get) continue;
    const ms = fromHeaders(get, now);
    if (ms !== undefined) return ms;
  }
  return fromRetryInfo(e.statusDetails);
}

function fromHeaders(get: HeaderGetter, now: number): number | undefined {
  for (const h of MS_HEADERS) {
    const v = get(h)?.trim();
    if (v !== undefined && NUMBER.test(v)) return Math.ceil(Number(v));
  }
  return parseRetryAfter(get('retry-after'), now);
}

/**
 * One `Retry-After` header value → milliseconds: delta-seconds or an HTTP-date (RFC 9110 §10.2.3);
 * undefined when absent or unparseable. Also used by `reencrypt` for the Kubernetes API's 429/503.
 */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  const ra = value?.trim();
  if (ra === undefined || ra === '') return undefined;
  if (NUMBER.test(ra)) return Math.ceil(Number(ra) * 1000);
  if (!/[a-z]/i.test(ra)) return undefined; // an HTTP-date names its day and month
  const at = Date.parse(ra);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** A case-insensitive header lookup over a Headers-like object or a plain record. */
function getter(headers: unknown): HeaderGetter | undefined {
  if (typeof headers !== 'object' || headers === null) return undefined;
  const withGet = headers as { get?: unknown };
  if (typeof withGet.get === 'function') {
    const get = withGet.get as (name: string) => unknown;
    return (name) => text(get.call(headers, name));
  }
  const record = headers as Record<string, unknown>;
  return (name) => {
    for (const [k, v] of Object.entries(record)) if (k.toLowerCase() === name) return text(v);
    return undefined;
  };
}

function text(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && typeof v[0] === 'string') return v[0];
  return undefined;
}

/** `google.rpc.RetryInfo.retryDelay` (a Duration; seconds may be a protobufjs Long or a string). */
function fromRetryInfo(details: unknown): number | undefined {
  if (!Array.isArray(details)) return undefined;
  for (const d of details) {
    const delay = (d as { retryDelay?: { seconds?: unknown; nanos?: unknown } } | null)?.retryDelay;
    if (typeof delay !== 'object' || delay === null) continue;
    const seconds = num(delay.seconds) ?? 0;
    const nanos = num(delay.nanos) ?? 0;
    const ms = Math.ceil(seconds * 1000 + nanos / 1e6);
    if (Number.isFinite(ms) && ms >= 0) return ms;
  }
  return undefined;
}

function num(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && NUMBER.test(v)) return Number(v);
  if (typeof v === 'object' && v !== null && typeof (v as { toNumber?: unknown }).toNumber === 'function') {
    return (v as { toNumber(): number }).toNumber();
  }
  return undefined;
}
