/**
 * The one scrubber for text that may end up in an error message or a log line: what a KMS, an
 * identity endpoint or a client library said. Every provider runs foreign text through it before
 * quoting it; messages the plugin writes itself (operation, key resource, advice) need not.
 *
 * Rules (each has a test in test/unit/kek/error-kit/scrub.test.ts):
 *  1. the exact secrets a provider registers (a client secret read from a file, the token and the
 *     body values of the request that failed), at least 4 characters long;
 *  2. PEM blocks (private keys, certificates), even when the END line was cut off;
 *  3. `Bearer <token>`;
 *  4. JWTs (`eyJ….….…`);
 *  5. Vault tokens (`hvs.` `hvb.` `hvr.` and the legacy `s.` `b.` `r.` forms);
 *  6. Google OAuth access tokens (`ya29.…`) and API keys (`AIza…`);
 *  7. AWS access key ids (`AKIA…`, `ASIA…`) and session tokens (`IQoJb3JpZ2lu…`, `FwoGZXIvYXdz…`);
 *  8. credential fields, in JSON, header or `k=v` form (`access_token`, `client_secret`,
 *     `private_key`, `secret_id`, `aws_secret_access_key`, `x-vault-token`, …);
 *  9. query parameters that carry signatures or tokens (`sig`, `signature`, `token`, `code`,
 *     `X-Amz-Signature`, `X-Amz-Security-Token`, `X-Amz-Credential`, `key`, …);
 * 10. base64/base64url/hex blobs long enough to be key material or a secret key (40+ characters,
 *     64+ for pure hex), unless they read as a resource path or name of words, numbers and short
 *     hex ids (`projects/p/locations/l/keyRings/r`, `keys/kek/0123…cdef`, `key/1234abcd-…`), which
 *     messages must keep because they name the key;
 * and then it collapses whitespace (optionally keeping only the first line) and caps the length.
 */

export const REDACTED = '[redacted]';

/** Longest scrubbed text kept, in characters (an ellipsis marks a cut). */
export const MAX_DETAIL = 300;

export interface ScrubOptions {
  /** Exact values that must never appear (e.g. a client secret, the token a request carried). */
  secrets?: readonly string[];
  /** Keep only the first line (after scrubbing, so a secret spanning lines goes as a whole). */
  firstLine?: boolean;
  /** Length cap (default MAX_DETAIL). */
  max?: number;
}

const PEM = /-----BEGIN [A-Z0-9 ]+-----[\s\S]*?(?:-----END [A-Z0-9 ]+-----|$)/g;
const BEARER = /\bBearer\s+[^\s"',;]+/gi;
const JWT = /eyJ[\w-]{4,}\.[\w-]+\.[\w-]*/g;
const VAULT_TOKEN = /\b(?:hv[sbr]|s|b|r)\.[A-Za-z0-9_-]{8,}/g;
const GOOGLE_TOKEN = /\bya29\.[\w.-]+/g;
const GOOGLE_API_KEY = /\bAIza[0-9A-Za-z_-]{35}/g;
const AWS_ACCESS_KEY_ID = /\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b/g;
const AWS_SESSION_TOKEN = /\b(?:IQoJb3JpZ2lu|FwoGZXIvYXdz|FQoGZXIvYXdz)[A-Za-z0-9+/=]*/g;
const FIELD_NAMES = [
  'access_token',
  'id_token',
  'refresh_token',
  'subject_token',
  'private_key',
  'private_key_id',
  'client_secret',
  'client_assertion',
  'assertion',
  'secret_id',
  'secretId',
  'password',
  'passwd',
  'aws_secret_access_key',
  'secret_access_key',
  'secretAccessKey',
  'aws_session_token',
  'session_token',
  'sessionToken',
  'x-vault-token',
  'x-amz-security-token',
  'pin',
].join('|');
const FIELD = new RegExp(`("?\\b(?:${FIELD_NAMES})"?\\s*[:=]\\s*)("[^"]*"|[^\\s,&}]+)`, 'gi');
const QUERY_NAMES = [
  'sig',
  'signature',
  'token',
  'code',
  'key',
  'secret',
  'client_secret',
  'client_assertion',
  'assertion',
  'access_token',
  'id_token',
  'refresh_token',
  'password',
  'x-amz-signature',
  'x-amz-security-token',
  'x-amz-credential',
].join('|');
const QUERY = new RegExp(`([?&;](?:${QUERY_NAMES})=)[^&#\\s"'<>]*`, 'gi');
/** Runs of the base64/base64url alphabet (plus `/` paths), examined by `isKeyMaterial`. */
const BLOB = /[A-Za-z0-9+/=_-]{40,}/g;
/**
 * True if a 40+ character run looks like key material (a secret key, a DEK, a token) rather than a
 * resource path or name. Random base64 is dense in capitals and letter/digit alternations (about
 * 0.6 of its length); names are words with a few camel-case capitals and trailing numbers, and
 * their hex ids (UUIDs, Azure key versions, digests) are left alone (about 0.1).
 */
function isKeyMaterial(run: string): boolean {
  if (/^[0-9a-fA-F]+$/.test(run)) return run.length >= 64;
  if (/[+=]/.test(run)) return true;
  // An AWS secret access key: exactly 40 characters of base64 with upper and lower case and digits.
  if (run.length === 40 && /[A-Z]/.test(run) && /[a-z]/.test(run) && /\d/.test(run) && !/[_-]/.test(run))
    return true;
  const pieces = run.split(/[/_-]/);
  // No word is 40 characters long: one unbroken run is a blob unless it is plain lower case.
  if (pieces.length === 1) return !/^[a-z0-9]+$/.test(run);
  let dense = 0;
  for (const piece of pieces) {
    if (/^[0-9a-fA-F]{0,48}$/.test(piece)) continue; // a hex id, a number, or nothing
    dense += (piece.match(/[A-Z]/g) ?? []).length;
    dense += (piece.match(/[A-Za-z](?=\d)|\d(?=[A-Za-z])/g) ?? []).length;
  }
  return dense / run.length >= 0.2;
}

/** Removes secrets from `text` (see the rules above), collapses whitespace and caps the length. */
export function scrub(text: string, options: ScrubOptions = {}): string {
  let out = String(text);
  for (const s of options.secrets ?? []) if (s.length >= 4) out = out.split(s).join(REDACTED);
  out = out
    .replace(PEM, REDACTED)
    .replace(BEARER, `Bearer ${REDACTED}`)
    .replace(JWT, REDACTED)
    .replace(VAULT_TOKEN, REDACTED)
    .replace(GOOGLE_TOKEN, REDACTED)
    .replace(GOOGLE_API_KEY, REDACTED)
    .replace(AWS_ACCESS_KEY_ID, REDACTED)
    .replace(AWS_SESSION_TOKEN, REDACTED)
    .replace(FIELD, `$1${REDACTED}`)
    .replace(QUERY, `$1${REDACTED}`)
    .replace(BLOB, (run) => (isKeyMaterial(run) ? REDACTED : run));
  if (options.firstLine) out = out.split(/\r?\n/)[0] ?? '';
  out = out.replace(/\s+/g, ' ').trim();
  const max = options.max ?? MAX_DETAIL;
  return out.length > max ? `${out.slice(0, max)}…` : out;
}
