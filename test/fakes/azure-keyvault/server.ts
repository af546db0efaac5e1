/**
 * A wire-level fake of Azure Key Vault / Managed HSM keys (API 2025-07-01 shape) over HTTPS, for
 * the real @azure/keyvault-keys SDK:
 *
 * - the 401 bearer challenge (`WWW-Authenticate: Bearer authorization=…, resource=…`);
 * - GET /keys/{name}[/{version}] (an empty version, as in `/keys/kek/`, is the latest);
 * - POST /keys/{name}/{version}/wrapkey|unwrapkey, including the versionless `//` path;
 * - GET /deletedkeys/{name} for soft-deleted keys;
 * - real RSA-OAEP-256 / RSA-OAEP (RSA, RSA-HSM keys) and AES key wrap A256KW (oct-HSM keys);
 * - rotation (a new version), attribute changes (enabled, nbf, exp), soft delete;
 * - fault injection: a FIFO of faults (status with optional Retry-After, hang, connection reset),
 *   each consumed by the first authorized request it matches.
 *
 * Service rules it mirrors: wrap needs an enabled key inside its nbf/exp window; unwrap works on
 * an expired or not-yet-valid key but not on a disabled one. Created times are unix seconds and
 * strictly increase per key in the fake (two real versions created in the same second tie).
 */
import {
  constants,
  createCipheriv,
  createDecipheriv,
  generateKeyPairSync,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpsFake } from './https-fake.js';
import { makeTestPki, type TestPki } from './certs.js';

export type FakeKeyType = 'RSA' | 'RSA-HSM' | 'oct-HSM';
export type FakeOp = 'getKey' | 'wrapKey' | 'unwrapKey' | 'getDeletedKey';

export interface FakeKeyOptions {
  kty?: FakeKeyType;
  /** RSA modulus bits (default 2048). */
  size?: number;
  enabled?: boolean;
  notBefore?: Date;
  expiresOn?: Date;
  keyOps?: string[];
}

export type Fault =
  | { op?: FakeOp; status: number; code?: string; message?: string; retryAfter?: string; innerCode?: string }
  | { op?: FakeOp; hang: true }
  | { op?: FakeOp; reset: true }
  /** Answer normally but name another version in the response `kid` (a misbehaving service). */
  | { op?: FakeOp; kidVersion: string }
  /** Answer normally but with one byte of the unwrapped key flipped (a corrupted response). */
  | { op?: FakeOp; corruptResult: true };

export interface SeenRequest {
  method: string;
  path: string;
  op?: FakeOp;
  authorized: boolean;
  status: number;
  alg?: string;
  /** The version the request addressed ('' = versionless). */
  version?: string;
  /** The version actually used. */
  usedVersion?: string;
}

interface Version {
  version: string;
  kty: FakeKeyType;
  publicKey?: KeyObject;
  privateKey?: KeyObject;
  secret?: Buffer;
  keyOps: string[];
  enabled: boolean;
  nbf?: number;
  exp?: number;
  created: number;
  updated: number;
}

interface Key {
  name: string;
  versions: Version[];
  deleted?: { deletedDate: number; scheduledPurgeDate: number };
}

const AES_KW_IV = Buffer.from('A6A6A6A6A6A6A6A6', 'hex');
const DEFAULT_OPS = ['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey'];
const b64u = (b: Buffer): string => b.toString('base64url');
const secs = (d: Date): number => Math.floor(d.getTime() / 1000);

export interface FakeKeyVaultOptions {
  pki?: TestPki;
  /** Managed HSM: challenge resource https://managedhsm.azure.net. */
  managedHsm?: boolean;
  tenantId?: string;
  recoveryLevel?: string;
  /** Accepts a bearer token (default: any non-empty token). */
  acceptToken?: (token: string) => boolean;
  /** Clock for nbf/exp checks (default Date.now). */
  now?: () => number;
}

export class FakeKeyVault {
  readonly faults: Fault[] = [];
  readonly seen: SeenRequest[] = [];
  readonly pki: TestPki;
  tenantId: string;
  recoveryLevel: string;
  acceptToken: (token: string) => boolean;
  now: () => number;
  private readonly managedHsm: boolean;
  private readonly keys = new Map<string, Key>();
  private readonly https: HttpsFake;

  constructor(options: FakeKeyVaultOptions = {}) {
    this.pki = options.pki ?? makeTestPki();
    this.managedHsm = options.managedHsm ?? false;
    this.tenantId = options.tenantId ?? '00000000-0000-0000-0000-0000000000aa';
    this.recoveryLevel = options.recoveryLevel ?? 'Recoverable';
    this.acceptToken = options.acceptToken ?? ((t) => t.length > 0);
    this.now = options.now ?? Date.now;
    this.https = new HttpsFake(
      this.pki,
      (req, res) => {
        this.handle(req, res).catch(() => {
          if (!res.headersSent) {
            res.writeHead(500, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ error: { code: 'InternalError', message: 'fake failure' } }));
          }
        });
      },
      true, // keep-alive, like Key Vault
    );
  }

  listen(port = 0, host = '127.0.0.1'): Promise<string> {
    return this.https.listen(port, host);
  }

  get url(): string {
    return this.https.url;
  }

  close(): Promise<void> {
    return this.https.close();
  }

  // ---- key management (what an operator would do in the portal / az CLI) --------------------

  /** Creates a key, or a new version of an existing one (a rotation). Returns the version id. */
  createKey(name: string, options: FakeKeyOptions = {}): string {
    let key = this.keys.get(name);
    if (!key) {
      key = { name, versions: [] };
      this.keys.set(name, key);
    }
    const previous = key.versions.at(-1);
    const kty = options.kty ?? previous?.kty ?? (this.managedHsm ? 'oct-HSM' : 'RSA');
    const created = Math.max(Math.floor(this.now() / 1000), (previous?.created ?? 0) + 1);
    const v: Version = {
      version: randomBytes(16).toString('hex'),
      kty,
      keyOps:
        options.keyOps ?? (kty === 'oct-HSM' ? ['wrapKey', 'unwrapKey', 'encrypt', 'decrypt'] : DEFAULT_OPS),
      enabled: options.enabled ?? true,
      nbf: options.notBefore ? secs(options.notBefore) : undefined,
      exp: options.expiresOn ? secs(options.expiresOn) : undefined,
      created,
      updated: created,
    };
    if (kty === 'oct-HSM') {
      v.secret = randomBytes(32);
    } else {
      const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: options.size ?? 2048 });
      v.publicKey = publicKey;
      v.privateKey = privateKey;
    }
    key.versions.push(v);
    key.deleted = undefined;
    return v.version;
  }

  rotateKey(name: string): string {
    if (!this.keys.has(name)) throw new Error(`fake: no key ${name}`);
    return this.createKey(name);
  }

  latestVersion(name: string): string {
    const v = this.keys.get(name)?.versions.at(-1);
    if (!v) throw new Error(`fake: no key ${name}`);
    return v.version;
  }

  /** Changes attributes of a version (default: the latest). `null` clears nbf/exp. */
  setAttributes(
    name: string,
    version: string | undefined,
    attrs: { enabled?: boolean; notBefore?: Date | null; expiresOn?: Date | null },
  ): void {
    const key = this.keys.get(name);
    const v = version ? key?.versions.find((x) => x.version === version) : key?.versions.at(-1);
    if (!v) throw new Error(`fake: no key ${name}/${version ?? ''}`);
    if (attrs.enabled !== undefined) v.enabled = attrs.enabled;
    if (attrs.notBefore !== undefined) v.nbf = attrs.notBefore ? secs(attrs.notBefore) : undefined;
    if (attrs.expiresOn !== undefined) v.exp = attrs.expiresOn ? secs(attrs.expiresOn) : undefined;
    v.updated = Math.floor(this.now() / 1000);
  }

  /** Soft-deletes a key (all versions); it stays recoverable until the purge date. */
  deleteKey(name: string, purgeAfterDays = 90): void {
    const key = this.keys.get(name);
    if (!key) throw new Error(`fake: no key ${name}`);
    const now = Math.floor(this.now() / 1000);
    key.deleted = { deletedDate: now, scheduledPurgeDate: now + purgeAfterDays * 86400 };
  }

  recoverKey(name: string): void {
    const key = this.keys.get(name);
    if (key) key.deleted = undefined;
  }

  /** Requests of `op` that reached the fake with a token (after the challenge). */
  count(op: FakeOp, status?: number): number {
    return this.seen.filter(
      (s) => s.op === op && s.authorized && (status === undefined || s.status === status),
    ).length;
  }

  // ---- HTTP ---------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const url = new URL(req.url ?? '/', 'https://fake');
    const record: SeenRequest = {
      method: req.method ?? '',
      path: url.pathname,
      authorized: false,
      status: 0,
    };
    this.seen.push(record);
    const send = (status: number, payload: unknown, headers: Record<string, string> = {}): void => {
      record.status = status;
      res.writeHead(status, {
        'content-type': 'application/json; charset=utf-8',
        'x-ms-request-id': randomBytes(8).toString('hex'),
        ...headers,
      });
      res.end(payload === undefined ? '' : JSON.stringify(payload));
    };

    const route = parseRoute(req.method ?? '', url.pathname);
    record.op = route?.op;
    record.version = route?.version;

    const auth = req.headers.authorization ?? '';
    const token = /^Bearer\s+(.+)$/i.exec(auth)?.[1];
    if (!token || !this.acceptToken(token)) {
      const resource = this.managedHsm ? 'https://managedhsm.azure.net' : 'https://vault.azure.net';
      send(
        401,
        token
          ? { error: { code: 'Unauthorized', message: 'AKV10022: Invalid audience or token.' } }
          : undefined,
        {
          'www-authenticate': `Bearer authorization="https://login.microsoftonline.com/${this.tenantId}", resource="${resource}"`,
        },
      );
      return;
    }
    record.authorized = true;

    if (!url.searchParams.get('api-version')) {
      send(400, {
        error: { code: 'BadParameter', message: "The 'api-version' query parameter is missing." },
      });
      return;
    }
    if (!route) {
      send(404, { error: { code: 'NotFound', message: 'The requested resource was not found.' } });
      return;
    }

    let fault = this.takeFault(route.op);
    let kidOverride: string | undefined;
    let corruptResult = false;
    if (fault && 'kidVersion' in fault) {
      kidOverride = fault.kidVersion;
      fault = undefined;
    } else if (fault && 'corruptResult' in fault) {
      corruptResult = true;
      fault = undefined;
    }
    if (fault) {
      if ('hang' in fault) return; // never answer; close() drops the connection
      if ('reset' in fault) {
        record.status = -1;
        req.socket.destroy();
        return;
      }
      const headers: Record<string, string> =
        fault.retryAfter !== undefined ? { 'retry-after': fault.retryAfter } : {};
      send(
        fault.status,
        {
          error: {
            code: fault.code ?? codeFor(fault.status),
            message: fault.message ?? 'injected fault',
            ...(fault.innerCode ? { innerError: { code: fault.innerCode } } : {}),
          },
        },
        headers,
      );
      return;
    }

    const key = this.keys.get(route.name);
    if (route.op === 'getDeletedKey') {
      if (!key?.deleted) {
        send(404, { error: { code: 'KeyNotFound', message: `Deleted Key not found: ${route.name}` } });
        return;
      }
      const v = key.versions.at(-1) as Version;
      send(200, {
        ...this.bundle(key, v),
        recoveryId: `${this.url}/deletedkeys/${key.name}`,
        deletedDate: key.deleted.deletedDate,
        scheduledPurgeDate: key.deleted.scheduledPurgeDate,
      });
      return;
    }
    if (!key || key.deleted) {
      send(404, {
        error: {
          code: 'KeyNotFound',
          message: `A key with (name/id) ${route.name} was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command.`,
        },
      });
      return;
    }
    const v = route.version ? key.versions.find((x) => x.version === route.version) : key.versions.at(-1);
    if (!v) {
      send(404, {
        error: {
          code: 'KeyNotFound',
          message: `A key with (name/id) ${route.name}/${route.version} was not found in this key vault.`,
        },
      });
      return;
    }
    record.usedVersion = v.version;

    if (route.op === 'getKey') {
      send(200, this.bundle(key, v));
      return;
    }

    let parsed: { alg?: unknown; value?: unknown };
    try {
      parsed = JSON.parse(body.toString('utf8')) as { alg?: unknown; value?: unknown };
    } catch {
      send(400, { error: { code: 'BadParameter', message: 'Request body is not valid JSON.' } });
      return;
    }
    const alg = typeof parsed.alg === 'string' ? parsed.alg : '';
    record.alg = alg;
    if (typeof parsed.value !== 'string') {
      send(400, { error: { code: 'BadParameter', message: 'Property value is required.' } });
      return;
    }
    const value = Buffer.from(parsed.value, 'base64url');
    const opName = route.op === 'wrapKey' ? 'wrapKey' : 'unwrapKey';
    if (!v.enabled) {
      send(403, {
        error: {
          code: 'Forbidden',
          message: `Operation ${opName} is not allowed on a disabled key.`,
          innerError: { code: 'KeyDisabled' },
        },
      });
      return;
    }
    if (!v.keyOps.includes(opName)) {
      send(403, {
        error: {
          code: 'Forbidden',
          message: `Operation ${opName} is not permitted on this key.`,
          innerError: { code: 'OperationNotAllowed' },
        },
      });
      return;
    }
    const nowS = this.now() / 1000;
    if (
      route.op === 'wrapKey' &&
      ((v.exp !== undefined && nowS >= v.exp) || (v.nbf !== undefined && nowS < v.nbf))
    ) {
      send(403, {
        error: {
          code: 'Forbidden',
          message: `Operation ${opName} is not allowed on an expired or not yet valid key.`,
          innerError: { code: 'KeyExpired' },
        },
      });
      return;
    }
    let out: Buffer;
    try {
      out = route.op === 'wrapKey' ? wrap(v, alg, value) : unwrap(v, alg, value);
    } catch (err) {
      send(400, { error: { code: 'BadParameter', message: (err as Error).message } });
      return;
    }
    if (corruptResult && route.op === 'unwrapKey') out[0] ^= 0x20;
    send(200, { kid: `${this.url}/keys/${key.name}/${kidOverride ?? v.version}`, value: b64u(out) });
  }

  private takeFault(op: FakeOp): Fault | undefined {
    const i = this.faults.findIndex((f) => f.op === undefined || f.op === op);
    if (i < 0) return undefined;
    return this.faults.splice(i, 1)[0];
  }

  private bundle(key: Key, v: Version): Record<string, unknown> {
    const jwk: Record<string, unknown> = {
      kid: `${this.url}/keys/${key.name}/${v.version}`,
      kty: v.kty,
      key_ops: v.keyOps,
    };
    if (v.publicKey) {
      const pub = v.publicKey.export({ format: 'jwk' });
      jwk.n = pub.n;
      jwk.e = pub.e;
    }
    return {
      key: jwk,
      attributes: {
        enabled: v.enabled,
        ...(v.nbf !== undefined ? { nbf: v.nbf } : {}),
        ...(v.exp !== undefined ? { exp: v.exp } : {}),
        created: v.created,
        updated: v.updated,
        recoveryLevel: this.recoveryLevel,
        recoverableDays: /recoverable/i.test(this.recoveryLevel) ? 90 : 0,
      },
      tags: {},
    };
  }
}

function codeFor(status: number): string {
  switch (status) {
    case 400:
      return 'BadParameter';
    case 401:
      return 'Unauthorized';
    case 403:
      return 'Forbidden';
    case 404:
      return 'KeyNotFound';
    case 429:
      return 'Throttled';
    default:
      return status >= 500 ? 'ServiceUnavailable' : 'Unknown';
  }
}

function parseRoute(method: string, path: string): { op: FakeOp; name: string; version: string } | undefined {
  let m = /^\/deletedkeys\/([0-9A-Za-z-]+)\/?$/.exec(path);
  if (m && method === 'GET') return { op: 'getDeletedKey', name: m[1], version: '' };
  m = /^\/keys\/([0-9A-Za-z-]+)\/([0-9A-Za-z]*)\/(wrapkey|unwrapkey)\/?$/i.exec(path);
  if (m && method === 'POST')
    return { op: m[3].toLowerCase() === 'wrapkey' ? 'wrapKey' : 'unwrapKey', name: m[1], version: m[2] };
  m = /^\/keys\/([0-9A-Za-z-]+)(?:\/([0-9A-Za-z]*))?\/?$/.exec(path);
  if (m && method === 'GET') return { op: 'getKey', name: m[1], version: m[2] ?? '' };
  return undefined;
}

function rsaHash(alg: string): string {
  if (alg === 'RSA-OAEP-256') return 'sha256';
  if (alg === 'RSA-OAEP') return 'sha1';
  throw new Error(`Algorithm ${alg} is not supported for this key.`);
}

function wrap(v: Version, alg: string, value: Buffer): Buffer {
  if (v.kty === 'oct-HSM') {
    if (alg !== 'A256KW' && alg !== 'CKM_AES_KEY_WRAP')
      throw new Error(`Algorithm ${alg} is not supported for an oct-HSM key.`);
    const c = createCipheriv('id-aes256-wrap', v.secret as Buffer, AES_KW_IV);
    return Buffer.concat([c.update(value), c.final()]);
  }
  return publicEncryptOaep(v.publicKey as KeyObject, rsaHash(alg), value);
}

function unwrap(v: Version, alg: string, value: Buffer): Buffer {
  if (v.kty === 'oct-HSM') {
    if (alg !== 'A256KW' && alg !== 'CKM_AES_KEY_WRAP')
      throw new Error(`Algorithm ${alg} is not supported for an oct-HSM key.`);
    try {
      const d = createDecipheriv('id-aes256-wrap', v.secret as Buffer, AES_KW_IV);
      return Buffer.concat([d.update(value), d.final()]);
    } catch {
      throw new Error('The parameter is incorrect: unwrap failed.');
    }
  }
  const hash = rsaHash(alg);
  try {
    return privateDecryptOaep(v.privateKey as KeyObject, hash, value);
  } catch {
    throw new Error('The parameter is incorrect: unwrap failed.');
  }
}

function publicEncryptOaep(key: KeyObject, hash: string, value: Buffer): Buffer {
  return publicEncrypt({ key, oaepHash: hash, padding: constants.RSA_PKCS1_OAEP_PADDING }, value);
}

function privateDecryptOaep(key: KeyObject, hash: string, value: Buffer): Buffer {
  return privateDecrypt({ key, oaepHash: hash, padding: constants.RSA_PKCS1_OAEP_PADDING }, value);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
