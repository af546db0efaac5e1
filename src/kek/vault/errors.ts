/**
 * Maps what the Vault client threw onto the plugin's error classes. The operation matters: a 400
 * on decrypt means the ciphertext failed authentication (or is malformed), on encrypt a bad
 * request, on login a refused credential. Statuses without a Vault-specific meaning go to the
 * shared HTTP baseline, network and TLS codes to the shared table (../error-kit/).
 */
import {
  CorruptError,
  InternalError,
  KeyDisabledError,
  PermissionDeniedError,
  PluginError,
  UnauthenticatedError,
  UnavailableError,
  UnknownKeyError,
  errorCodeOf,
  httpStatusError,
  isAbortError,
  networkFailure,
} from '../errors.js';
import { withKeyState } from '../key-state.js';
import type { PluginErrorOptions } from '../../errors.js';
import { VaultHttpError, VaultProtocolError } from './http.js';

export type VaultOperation = 'read_key' | 'encrypt' | 'decrypt' | 'login' | 'lookup_self' | 'renew_self';

export type UnavailableReason = 'sealed' | 'standby' | 'unreachable' | 'server_error' | 'tls';

/** `GET keys/<name>` answered 404: the Transit key does not exist (deleted, or never created). */
export class VaultKeyNotFoundError extends UnknownKeyError {}

/** Vault is not serving (sealed, standby, unreachable, 5xx); `reason` feeds KeyState details. */
export class VaultUnavailableError extends UnavailableError {
  constructor(
    readonly reason: UnavailableReason,
    message: string,
    options?: PluginErrorOptions,
  ) {
    super(message, options);
  }
}

/** The classify function handed to RemoteCaller, bound to an operation and a description. */
export function classifyVaultError(err: unknown, op: VaultOperation, what: string): PluginError {
  if (err instanceof PluginError) return err;
  if (err instanceof VaultHttpError) return fromStatus(err, op, what);
  if (err instanceof VaultProtocolError) return new CorruptError(`${what}: ${err.message}`);
  if (isAbortError(err)) return new UnavailableError(`${what}: request aborted`, { cause: err });
  const network = networkFailure(
    err,
    {
      what,
      service: 'Vault',
      tlsFix: 'check vault.caFile, vault.tls.serverName and the address host',
    },
    (cls, message, retryable) =>
      new VaultUnavailableError(cls === 'tls' ? 'tls' : 'unreachable', message, { retryable }),
  );
  if (network) return network;
  const code = errorCodeOf(err);
  if (code || (err as { name?: unknown } | null)?.name === 'TypeError') {
    return new VaultUnavailableError(
      'unreachable',
      `${what}: cannot reach Vault (${code ?? 'network error'})`,
    );
  }
  return new InternalError(`${what}: unexpected error from the Vault client`, { cause: err });
}

function fromStatus(err: VaultHttpError, op: VaultOperation, what: string): PluginError {
  const detail = err.errors.join('; ');
  const said = detail ? `: ${detail}` : '';
  const text = detail.toLowerCase();
  const { status } = err;
  if (text.includes('vault is sealed') || text.includes('is sealed')) {
    return new VaultUnavailableError(
      'sealed',
      `${what}: Vault is sealed; unseal it (the plugin keeps retrying)`,
    );
  }
  if (
    (status >= 300 && status < 400) ||
    text.includes('standby') ||
    text.includes('local node not active') ||
    text.includes('active cluster node not found')
  ) {
    return new VaultUnavailableError(
      'standby',
      `${what}: reached a standby Vault node that cannot serve the request (HTTP ${status}${said}); point vault.address at the active node or its load balancer`,
    );
  }
  if (status === 403) {
    return httpStatusError(
      403,
      op === 'login'
        ? `${what}: Vault refused the login${said}; check the role and the credential`
        : `${what}: permission denied by Vault; check the token's policy (see docs/providers/vault.md)`,
    );
  }
  if (status === 429) return httpStatusError(429, `${what}: Vault rate limit reached (HTTP 429)${said}`);
  if (status === 412)
    return new VaultUnavailableError('standby', `${what}: Vault node not yet consistent (HTTP 412)`);
  if (status >= 500)
    return new VaultUnavailableError('server_error', `${what}: Vault error (HTTP ${status})${said}`);
  if (status === 404) {
    if (text.includes('no handler for route')) {
      return new UnknownKeyError(
        `${what}: no such path in Vault (HTTP 404)${said}; check vault.transitMount, vault.namespace and vault.auth.mount`,
      );
    }
    return withKeyState(
      new VaultKeyNotFoundError(`${what}: Transit key not found (HTTP 404); create it or fix vault.keyName`),
      'not_found',
    );
  }
  if (op === 'login')
    return new PermissionDeniedError(`${what}: Vault refused the login (HTTP ${status})${said}`);
  if (op === 'renew_self' && status === 400)
    return new PermissionDeniedError(`${what}: token not renewable (HTTP 400)${said}`);
  if (status === 400 && op === 'decrypt') {
    if (text.includes('disallowed by policy') || text.includes('too old')) {
      return new KeyDisabledError(
        `${what}: Vault refuses this key version (below min_decryption_version)${said}; lower min_decryption_version to read data wrapped with it`,
      );
    }
    if (text.includes('authentication failed') || text.includes('message authentication')) {
      return new UnauthenticatedError(
        `${what}: Vault could not authenticate the wrapped DEK (wrong key, associated data or tampered)`,
      );
    }
    if (text.includes('encryption key not found'))
      return new UnknownKeyError(`${what}: Transit key not found${said}`);
    return new CorruptError(`${what}: Vault rejected the wrapped DEK as malformed${said}`);
  }
  if (status === 400 && op === 'encrypt') {
    if (text.includes('less than the minimum encryption')) {
      return withKeyState(
        new KeyDisabledError(`${what}: key version below min_encryption_version${said}`),
        'disabled',
      );
    }
    if (text.includes('higher than the latest') || text.includes('encryption key not found')) {
      return new UnknownKeyError(`${what}: key version not found${said}`);
    }
  }
  return httpStatusError(status, `${what}: Vault rejected the request (HTTP ${status})${said}`);
}
