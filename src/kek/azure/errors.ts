/**
 * Maps what @azure/keyvault-keys and @azure/identity throw into the shared error classes.
 *
 * The SDK's RestError carries the request (including the base64 DEK of a wrapKey body), so it is
 * never attached as a cause: the cause is a fresh Error holding only the status and service error
 * code. Messages keep the service's own explanation (it names principals and permissions, which
 * operators need, never key material), truncated, with any known secret scrubbed out.
 */
import {
  InternalError,
  InvalidInputError,
  KeyDisabledError,
  PermissionDeniedError,
  PluginError,
  ThrottledError,
  UnauthenticatedError,
  UnavailableError,
  UnknownKeyError,
  isAbortError,
} from '../errors.js';
import { withKeyState } from '../key-state.js';

export type AzureOperation = 'getKey' | 'getDeletedKey' | 'wrapKey' | 'unwrapKey';

interface RestErrorLike {
  name: string;
  message: string;
  statusCode?: number;
  code?: string;
  details?: unknown;
}

function asRestError(err: unknown): RestErrorLike | undefined {
  if (!(err instanceof Error)) return undefined;
  if (err.name !== 'RestError') return undefined;
  return err as unknown as RestErrorLike;
}

/** Inner error code of a Key Vault error body (e.g. `KeyDisabled`), if the SDK kept it. */
function innerCode(e: RestErrorLike): string | undefined {
  const d = e.details as
    { error?: { innererror?: { code?: unknown }; innerError?: { code?: unknown } } } | undefined;
  const c = (d?.error?.innerError ?? d?.error?.innererror)?.code;
  return typeof c === 'string' ? c : undefined;
}

export interface ClassifyContext {
  operation: AzureOperation;
  /** Non-secret description of the key, e.g. `https://v.vault.azure.net/keys/kek/<version>`. */
  what: string;
  /** Strings that must never appear in a message (e.g. a client secret read from a file). */
  secrets?: readonly string[];
}

export function scrub(text: string, secrets: readonly string[] = []): string {
  let out = text.split('\n')[0] ?? '';
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join('[redacted]');
  // Bearer tokens and JWT-looking strings never belong in a message.
  out = out.replace(/Bearer\s+[A-Za-z0-9._~+/=-]+/gi, 'Bearer [redacted]');
  out = out.replace(/eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g, '[redacted-jwt]');
  return out.length > 300 ? `${out.slice(0, 300)}…` : out;
}

function safeCause(e: { name: string; statusCode?: number; code?: string }): Error {
  const err = new Error(
    `${e.name}${e.statusCode ? ` status=${e.statusCode}` : ''}${e.code ? ` code=${e.code}` : ''}`,
  );
  err.name = e.name;
  return err;
}

const ROLE_HINT =
  'grant the plugin identity "Key Vault Crypto User" (or a role with keys/read, keys/wrap/action and keys/unwrap/action) on the key or vault; for access-policy vaults grant get, wrapKey, unwrapKey';

/** Classifies an SDK or identity error for `ctx.operation` on `ctx.what`. */
export function classifyAzureError(err: unknown, ctx: ClassifyContext): PluginError {
  if (err instanceof PluginError) return err;
  const where = `Azure Key Vault ${ctx.operation} on ${ctx.what}`;
  const rest = asRestError(err);
  if (rest) {
    const status = rest.statusCode;
    const svc = scrub(rest.message, ctx.secrets);
    const cause = safeCause(rest);
    const code = rest.code ?? '';
    if (status === undefined) {
      // No HTTP response: connection refused/reset, DNS, TLS.
      if (/certificate|self.signed|CERT_|UNABLE_TO_VERIFY/i.test(`${code} ${rest.message}`)) {
        return new UnavailableError(
          `${where}: TLS verification failed (${code || 'certificate error'}); check the vault URL and CA trust`,
          {
            cause,
            retryable: false,
          },
        );
      }
      return new UnavailableError(`${where}: no response (${code || 'network error'})`, { cause });
    }
    if (status === 401) {
      return new PermissionDeniedError(
        `${where}: 401 Unauthorized: the access token was rejected (${svc}); check the identity and tenant`,
        { cause },
      );
    }
    if (status === 403) {
      const inner = innerCode(rest) ?? '';
      if (/KeyDisabled|disabled/i.test(`${inner} ${rest.message}`)) {
        return withKeyState(
          new KeyDisabledError(`${where}: the key version is disabled (${svc})`, { cause }),
          'disabled',
        );
      }
      if (/expired|not yet valid|notBefore|nbf|\bexp\b/i.test(`${inner} ${rest.message}`)) {
        return withKeyState(
          new KeyDisabledError(`${where}: the key version is outside its validity window (${svc})`, {
            cause,
          }),
          /not yet valid|notBefore|nbf/i.test(`${inner} ${rest.message}`) ? 'not_yet_valid' : 'expired',
        );
      }
      return new PermissionDeniedError(`${where}: 403 Forbidden (${svc}); ${ROLE_HINT}`, { cause });
    }
    if (status === 404) {
      return withKeyState(
        new UnknownKeyError(
          `${where}: 404 ${code || 'NotFound'}: the key or version does not exist (or was deleted) (${svc})`,
          { cause },
        ),
        'not_found',
      );
    }
    if (status === 429) {
      return new ThrottledError(`${where}: 429 throttled by Key Vault`, { cause });
    }
    if (status === 408 || status >= 500) {
      return new UnavailableError(`${where}: ${status} ${code || 'server error'} from Key Vault`, { cause });
    }
    if (status === 400 && ctx.operation === 'unwrapKey') {
      return new UnauthenticatedError(
        `${where}: 400 ${code || 'BadParameter'}: the wrapped DEK does not unwrap under this key version (tampered, or wrapped by another key)`,
        { cause },
      );
    }
    if (status === 400) {
      return new InvalidInputError(`${where}: 400 ${code || 'BadRequest'} (${svc})`, { cause });
    }
    return new InternalError(`${where}: unexpected HTTP ${status} ${code}`.trim(), { cause });
  }
  if (err instanceof Error) {
    const cause = safeCause({ name: err.name });
    const msg = scrub(err.message, ctx.secrets);
    if (err.name === 'CredentialUnavailableError') {
      return new PermissionDeniedError(
        `${where}: no Azure credential available (${msg}); configure workload identity, managed identity, azure.json or a service principal`,
        { cause },
      );
    }
    if (err.name === 'AuthenticationRequiredError' || err.name === 'AuthenticationError') {
      const status = (err as { statusCode?: number }).statusCode;
      if (status !== undefined && (status >= 500 || status === 429 || status === 408)) {
        return new UnavailableError(`${where}: Entra ID token request failed with ${status}`, { cause });
      }
      if (
        status === undefined &&
        /ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|network|socket/i.test(err.message)
      ) {
        return new UnavailableError(`${where}: Entra ID not reachable (${msg})`, { cause });
      }
      return new PermissionDeniedError(`${where}: Entra ID refused the credential (${msg})`, { cause });
    }
    if (isAbortError(err)) {
      return new UnavailableError(`${where}: request aborted`, { cause });
    }
    if (/ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|socket hang up/i.test(err.message)) {
      return new UnavailableError(`${where}: no response (${msg})`, { cause });
    }
    return new InternalError(`${where}: ${err.name}: ${msg}`, { cause });
  }
  return new InternalError(`${where}: unexpected failure`);
}
