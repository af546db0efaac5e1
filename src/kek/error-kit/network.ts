/**
 * Network and TLS failures, for every backend: which error codes mean "the KMS is not reachable
 * right now" (UNAVAILABLE, retried) and which mean "the TLS setup is wrong" (UNAVAILABLE, NOT
 * retried: another attempt meets the same certificate; the message says what to fix).
 *
 * Codes are found the same way everywhere: on the error, then along its `cause` chain (undici's
 * `fetch failed` TypeError, the AWS SDK and @azure/core-rest-pipeline wrap the socket error), and
 * in an AggregateError's `errors` (Node's happy-eyeballs connect). Duck-typed, not `instanceof`:
 * errors may come from another realm. Text is searched only where a library keeps nothing but a
 * message (identity libraries, gRPC's `details`).
 */
import { UnavailableError, type PluginError } from '../../errors.js';

/** Connection-level failures: the next attempt (or another replica behind the address) may work. */
export const TRANSIENT_NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENETRESET',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
  'ERR_TLS_HANDSHAKE_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/** TLS failures that retrying does not fix, with what each means. */
export const TLS_CONFIG_CODES: ReadonlyMap<string, string> = new Map([
  ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'the server certificate is not signed by a trusted CA'],
  ['UNABLE_TO_GET_ISSUER_CERT', 'the server certificate is not signed by a trusted CA'],
  ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'the server certificate is not signed by a trusted CA'],
  ['SELF_SIGNED_CERT_IN_CHAIN', 'the server certificate chain ends in an untrusted self-signed CA'],
  ['DEPTH_ZERO_SELF_SIGNED_CERT', 'the server certificate is self-signed and not trusted'],
  ['CERT_SIGNATURE_FAILURE', 'the server certificate signature does not verify'],
  ['CERT_UNTRUSTED', 'the server certificate is not trusted'],
  ['CERT_REJECTED', 'the server certificate is rejected'],
  ['CERT_REVOKED', 'the server certificate is revoked'],
  ['INVALID_CA', 'a CA certificate in the chain is invalid'],
  ['CERT_HAS_EXPIRED', 'the server certificate has expired'],
  ['CERT_NOT_YET_VALID', 'the server certificate is not yet valid (check the clock)'],
  ['ERR_TLS_CERT_ALTNAME_INVALID', 'the server certificate does not name the host connected to'],
  ['HOSTNAME_MISMATCH', 'the server certificate does not name the host connected to'],
  ['ERR_SSL_WRONG_VERSION_NUMBER', 'the server does not speak TLS on that port (http:// or the wrong port?)'],
  ['TLS_CERTIFICATE_ERROR', 'the server certificate was refused'],
  ['EPROTO', 'the TLS handshake failed (the server does not speak TLS there, or no common protocol)'],
]);

/** Codes that say nothing about the network (undici's generic and abort codes). */
const NEUTRAL = /^(?:UND_ERR|UND_ERR_ABORTED.*|ABORT_ERR)$/;

/** What text-only errors say for a TLS code (Node's and OpenSSL's own wording). */
const TLS_TEXT: ReadonlyArray<[RegExp, string]> = [
  [/unable to verify the first certificate/i, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
  [/unable to get local issuer certificate/i, 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'],
  [/self[- ]signed certificate in certificate chain/i, 'SELF_SIGNED_CERT_IN_CHAIN'],
  [/self[- ]signed certificate/i, 'DEPTH_ZERO_SELF_SIGNED_CERT'],
  [/certificate has expired/i, 'CERT_HAS_EXPIRED'],
  [/certificate is not yet valid/i, 'CERT_NOT_YET_VALID'],
  [/does not match certificate's altnames/i, 'ERR_TLS_CERT_ALTNAME_INVALID'],
  [/wrong version number/i, 'ERR_SSL_WRONG_VERSION_NUMBER'],
  // Any other certificate complaint (Azure's pipeline sometimes keeps only the text).
  [/certificate|self.signed|UNABLE_TO_VERIFY/i, 'TLS_CERTIFICATE_ERROR'],
];

export type NetworkClass = 'transient' | 'tls';

/** How a code reads: a transient network failure, a TLS setup problem, or neither. */
export function networkClassOf(code: string | undefined): NetworkClass | undefined {
  if (code === undefined) return undefined;
  if (TLS_CONFIG_CODES.has(code)) return 'tls';
  if (TRANSIENT_NETWORK_CODES.has(code)) return 'transient';
  return undefined;
}

/**
 * The error code of `err` or of its causes: the first one that is a known network or TLS code,
 * else the first string code at all (for the message). Walks at most 6 levels.
 */
export function errorCodeOf(err: unknown): string | undefined {
  let first: string | undefined;
  const queue: unknown[] = [err];
  for (let seen = 0; seen < 12 && queue.length > 0; seen += 1) {
    const e = queue.shift();
    if (typeof e !== 'object' || e === null) continue;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && !NEUTRAL.test(code)) {
      if (networkClassOf(code)) return code;
      first ??= code;
    }
    const inner = (e as { errors?: unknown }).errors;
    if (Array.isArray(inner)) queue.push(...inner.slice(0, 3));
    queue.push((e as { cause?: unknown }).cause);
  }
  return first;
}

/** A known network or TLS code named in free text ("connect ECONNREFUSED …", "socket hang up", …). */
export function networkCodeInText(text: string): string | undefined {
  const named = /\b(E[A-Z_]{3,}|UND_ERR_[A-Z_]+|ERR_[A-Z_]+|[A-Z_]*CERT[A-Z_]*)\b/g;
  for (const m of text.matchAll(named)) if (networkClassOf(m[1])) return m[1];
  for (const [pattern, code] of TLS_TEXT) if (pattern.test(text)) return code;
  if (/socket hang up/i.test(text)) return 'ECONNRESET';
  return undefined;
}

export interface NetworkContext {
  /** Start of the message: operation and key, e.g. `aws Encrypt arn:…`. */
  what: string;
  /** Who could not be reached, e.g. `AWS KMS`, `Vault`, `Key Vault`. */
  service: string;
  /** What to check when TLS fails: the config fields, e.g. `check vault.tls.caFile, …`. */
  tlsFix: string;
  /** What to check when the service cannot be reached (default: the address, network and proxy). */
  reachFix?: string;
  /** Also search the message text (libraries that keep only a message). */
  text?: string;
  cause?: unknown;
}

/**
 * The error for a network or TLS failure, or undefined when `err` is not one (the provider goes
 * on with its own reading). `make` lets a provider return its own subclass (Vault's reasons).
 */
export function networkFailure(
  err: unknown,
  ctx: NetworkContext,
  make: (cls: NetworkClass, message: string, retryable: boolean) => PluginError = (
    _cls,
    message,
    retryable,
  ) => new UnavailableError(message, { retryable, ...(ctx.cause !== undefined ? { cause: ctx.cause } : {}) }),
): PluginError | undefined {
  let code = errorCodeOf(err);
  let cls = networkClassOf(code);
  if (!cls && ctx.text !== undefined) {
    const found = networkCodeInText(ctx.text);
    if (found) {
      code = found;
      cls = networkClassOf(found);
    }
  }
  if (cls === 'tls') {
    return make(
      'tls',
      `${ctx.what}: TLS handshake with ${ctx.service} failed (${code}: ${TLS_CONFIG_CODES.get(code as string)}); ${ctx.tlsFix}. Not retried: another attempt meets the same certificate`,
      false,
    );
  }
  if (cls === 'transient') {
    return make(
      'transient',
      `${ctx.what}: cannot reach ${ctx.service} (${code}); ${ctx.reachFix ?? 'check the address, the network and any proxy'}`,
      true,
    );
  }
  return undefined;
}
