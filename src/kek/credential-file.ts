/**
 * A credential that lives in a file and may be replaced underneath a running plugin (Vault Agent,
 * a projected service-account token, a Secret volume, cert-manager, an operator with `mv`).
 *
 * The one place that decides when such a file is re-read and what happens if the new content is
 * bad; every provider uses it for its token / secret / certificate / credential files:
 *
 * - `get()` stats the file on every call (cheap next to the network call it precedes) and re-reads
 *   and re-parses it when its identity (inode, size, mtime, ctime) changed, so a changed file is
 *   picked up at the next call. Secret-volume updates swap a symlink: stat follows it.
 * - A new version that cannot be read or parsed is logged once (field, path, error code: never
 *   the content), counted as `credential_reloads_total{outcome="error"}`, and the value already
 *   loaded is kept until it expires (`expiresAt`, e.g. a JWT's `exp`); after that `get()` throws.
 * - A good new version replaces the old one and is counted as `outcome="ok"`; `version` goes up so
 *   callers holding something derived from it (an SDK client, a TLS agent) rebuild it.
 * - The first load has no fallback: its error is thrown (a PermissionDeniedError naming the field).
 *
 * Start-up versus runtime: files that are configuration (CA bundles, client certificate and key,
 * credentials JSON, azure.json, a client secret file, the PIN file) are read once at start-up by the
 * shared config-file reader (./error-kit/config-file.ts): unreadable → ConfigError, exit 2, under
 * every provider. This class takes over from there, for what may change while serving: a bad new
 * version is logged and counted and the last good credential kept (never a ConfigError: the plugin
 * is serving). A credential that an agent writes (Vault token / JWT / AppRole files) is first read
 * here at its first use; if it is not there yet, that call fails permission_denied and the next
 * probe tries again, instead of exiting: a sidecar that writes it a moment after the plugin starts
 * must not crash-loop the plugin. Messages about an unreadable file read the same everywhere
 * (`unreadableFile`).
 */
import { readFileSync, statSync } from 'node:fs';
import type { Logger } from '../observability/logger.js';
import type { ProviderMetrics } from '../observability/metrics.js';
import { PermissionDeniedError, unreadableFile } from './errors.js';

export interface CredentialFileOptions<T> {
  /** The file. */
  path: string;
  /** Config field that names it, for messages: e.g. "vault.auth.tokenFile". */
  field: string;
  /** Provider label of the metric: vault, azure, gcp, aws, pkcs11. */
  provider: string;
  /** Turns the bytes into the credential; throws (with a message that holds no secret) if bad. */
  parse: (data: Buffer) => T;
  /** When the loaded credential stops being usable (epoch ms); undefined = unknown / never. */
  expiresAt?: (value: T) => number | undefined;
  logger: Logger;
  metrics: Pick<ProviderMetrics, 'credentialReloads'>;
  /** Wall clock (tests). */
  now?: () => number;
}

interface Loaded<T> {
  value: T;
  stamp: string;
  expiresAt: number | undefined;
}

export class CredentialFile<T> {
  private loaded: Loaded<T> | undefined;
  /** Stamp of a new version that failed, so it is logged and counted once, not on every call. */
  private rejectedStamp: string | undefined;
  private rejectedError: Error | undefined;
  private versionNo = 0;

  constructor(private readonly o: CredentialFileOptions<T>) {}

  get path(): string {
    return this.o.path;
  }

  /** Goes up by one every time a new value is adopted (the first load is version 1). */
  get version(): number {
    return this.versionNo;
  }

  /** The current credential, re-read first if the file changed. */
  get(): T {
    const { path, field } = this.o;
    let stamp: string;
    try {
      const st = statSync(path);
      stamp = `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
    } catch (err) {
      return this.keepOld(`missing:${code(err)}`, this.readError(err));
    }
    if (this.loaded?.stamp === stamp) return this.checkExpiry(this.loaded);
    if (stamp === this.rejectedStamp && this.loaded)
      return this.keepOld(stamp, this.rejectedError ?? new Error('rejected'));
    let value: T;
    try {
      value = this.o.parse(readFileSync(path));
    } catch (err) {
      const failure = (err as NodeJS.ErrnoException).code
        ? this.readError(err)
        : new PermissionDeniedError(`${field} ${path}: ${(err as Error).message}`);
      return this.keepOld(stamp, failure);
    }
    const first = this.loaded === undefined;
    const previous = this.loaded;
    this.loaded = { value, stamp, expiresAt: this.o.expiresAt?.(value) };
    this.rejectedStamp = undefined;
    this.rejectedError = undefined;
    // Same bytes under a new stamp (touch, re-mounted Secret): nothing to adopt.
    if (previous && sameValue(previous.value, value)) return value;
    this.versionNo++;
    if (!first) {
      this.o.metrics.credentialReloads.inc({ provider: this.o.provider, outcome: 'ok' });
      this.o.logger.info(
        { provider: this.o.provider, field, file: path },
        'credential file changed; using the new credential from the next call',
      );
    }
    return value;
  }

  private readError(err: unknown): PermissionDeniedError {
    return new PermissionDeniedError(unreadableFile(this.o.path, err, this.o.field));
  }

  /** A new version is unusable: keep the loaded credential while it is valid, else fail. */
  private keepOld(stamp: string, err: Error): T {
    const old = this.loaded;
    if (!old) throw err;
    if (stamp !== this.rejectedStamp) {
      this.rejectedStamp = stamp;
      this.rejectedError = err;
      this.o.metrics.credentialReloads.inc({ provider: this.o.provider, outcome: 'error' });
      this.o.logger.warn(
        {
          provider: this.o.provider,
          field: this.o.field,
          file: this.o.path,
          reason: err.message,
          ...(old.expiresAt !== undefined ? { keptUntil: new Date(old.expiresAt).toISOString() } : {}),
        },
        'credential file changed but cannot be used; keeping the credential already loaded until it expires',
      );
    }
    return this.checkExpiry(old, err);
  }

  private checkExpiry(l: Loaded<T>, cause?: Error): T {
    const now = (this.o.now ?? Date.now)();
    if (l.expiresAt !== undefined && l.expiresAt <= now) {
      if (cause)
        throw new PermissionDeniedError(
          `${this.o.field} ${this.o.path}: the loaded credential expired and the file cannot be used: ${cause.message}`,
        );
      // Expired and unchanged: hand it out anyway; the remote side gives the precise error.
    }
    return l.value;
  }
}

function code(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? 'error';
}

function sameValue(a: unknown, b: unknown): boolean {
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b);
  if (typeof a === 'string' || typeof a === 'number') return a === b;
  try {
    return JSON.stringify(a) === JSON.stringify(b);
  } catch {
    return false;
  }
}

// ---- parsers shared by the providers -----------------------------------------------------------

/** A single-line secret (token, secret id, client secret): trimmed, not empty, no inner spaces. */
export function parseSecretText(data: Buffer): string {
  const text = data.toString('utf8').trim();
  if (text === '') throw new Error('the file is empty');
  if (/\s/.test(text)) throw new Error('the file does not hold a single value');
  return text;
}

/** A JWT (service-account / federated token): three base64url parts, JSON header and claims. */
export function parseJwt(data: Buffer): string {
  const jwt = parseSecretText(data);
  const parts = jwt.split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p)))
    throw new Error('the file does not hold a JWT');
  try {
    JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
    JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    throw new Error('the file does not hold a JWT (header or claims are not JSON)');
  }
  return jwt;
}

/** The `exp` claim of a JWT, in epoch ms (undefined if it has none). */
export function jwtExpiry(jwt: string): number | undefined {
  try {
    const claims = JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8')) as {
      exp?: unknown;
    };
    return typeof claims.exp === 'number' ? claims.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** A PEM file that must contain a CERTIFICATE block and, if `needKey`, a PRIVATE KEY block. */
export function parsePem(needKey: boolean): (data: Buffer) => string {
  return (data) => {
    const text = data.toString('utf8');
    if (!/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.test(text))
      throw new Error('no PEM CERTIFICATE block');
    if (
      needKey &&
      !/-----BEGIN ([A-Z]+ )?PRIVATE KEY-----[\s\S]+?-----END ([A-Z]+ )?PRIVATE KEY-----/.test(text)
    )
      throw new Error('no PEM PRIVATE KEY block');
    return text;
  };
}

/** A PEM private key. */
export function parsePrivateKey(data: Buffer): string {
  const text = data.toString('utf8');
  if (!/-----BEGIN ([A-Z]+ )?PRIVATE KEY-----[\s\S]+?-----END ([A-Z]+ )?PRIVATE KEY-----/.test(text))
    throw new Error('no PEM PRIVATE KEY block');
  return text;
}

/** A JSON object (credential files). */
export function parseJsonObject(data: Buffer): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(data.toString('utf8'));
  } catch {
    throw new Error('the file is not valid JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new Error('the file must hold a JSON object');
  return doc as Record<string, unknown>;
}
