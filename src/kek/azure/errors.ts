/**
 * Maps what @azure/keyvault-keys and @azure/identity throw into the shared error classes.
 *
 * The SDK's RestError carries the request (including the base64 DEK of a wrapKey body), so it is
 * never attached as a cause: the cause is a fresh Error holding only the status and service error
 * code. Messages keep the service's own explanation (it names principals and permissions, which
 * operators need, never key material), run through the shared scrubber with the known secrets.
 * Statuses Key Vault does not give a meaning of its own go to the shared HTTP baseline; network
 * and TLS failures to the shared network table (../error-kit/).
 */
import {
  InternalError,
  KeyDisabledError,
  PermissionDeniedError,
  PluginError,
  UnauthenticatedError,
  UnavailableError,
  UnknownKeyError,
  httpStatusError,
  isAbortError,
  networkCodeInText,
  networkFailure,
  scrub,
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
    const svc = scrub(rest.message, { secrets: ctx.secrets, firstLine: true });
    const cause = safeCause(rest);
    const code = rest.code ?? '';
    if (status === undefined) {
      // No HTTP response: connection refused/reset, DNS, TLS.
      return (
        networkFailure(err, {
          what: where,
          service: 'Key Vault',
          tlsFix: 'check the vault URL and the CA trust (azure.caFile)',
          text: `${code} ${rest.message}`,
          cause,
        }) ?? new UnavailableError(`${where}: no response (${code || 'network error'})`, { cause })
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
    if (status === 400 && ctx.operation === 'unwrapKey') {
      return new UnauthenticatedError(
        `${where}: 400 ${code || 'BadParameter'}: the wrapped DEK does not unwrap under this key version (tampered, or wrapped by another key)`,
        { cause },
      );
    }
    // Everything else means what the shared HTTP baseline says.
    let said: string;
    if (status === 401)
      said = `401 Unauthorized: the access token was rejected (${svc}); check the identity and tenant`;
    else if (status === 403) said = `403 Forbidden (${svc}); ${ROLE_HINT}`;
    else if (status === 429) said = '429 throttled by Key Vault';
    else if (status === 408 || status >= 500) said = `${status} ${code || 'server error'} from Key Vault`;
    else if (status === 400) said = `400 ${code || 'BadRequest'} (${svc})`;
    else said = `unexpected HTTP ${status} ${code}`.trim();
    return httpStatusError(status, `${where}: ${said}`, { cause });
  }
  if (err instanceof Error) {
    const cause = safeCause({ name: err.name });
    const msg = scrub(err.message, { secrets: ctx.secrets, firstLine: true });
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
      if (status === undefined && (networkCodeInText(err.message) || /network|socket/i.test(err.message))) {
        return new UnavailableError(`${where}: Entra ID not reachable (${msg})`, { cause });
      }
      return new PermissionDeniedError(`${where}: Entra ID refused the credential (${msg})`, { cause });
    }
    if (isAbortError(err)) {
      return new UnavailableError(`${where}: request aborted`, { cause });
    }
    const network = networkFailure(err, {
      what: where,
      service: 'Key Vault',
      tlsFix: 'check the vault URL and the CA trust (azure.caFile)',
      text: err.message,
      cause,
    });
    if (network) return network;
    return new InternalError(`${where}: ${err.name}: ${msg}`, { cause });
  }
  return new InternalError(`${where}: unexpected failure`);
}
