/**
 * A wire-level fake of HashiCorp Vault / OpenBao for the Transit KEK provider: Transit
 * (encrypt, decrypt, keys, rotate, config, delete) with real AES-256-GCM, tokens with TTLs
 * (lookup-self, renew-self, expiry), Kubernetes, AppRole and TLS-certificate login, namespaces,
 * sys/health, sys/seal and sys/unseal (root token), and injectable faults (sealed, standby, rate limits, status codes, hangs, dropped
 * connections, latency, outages).
 *
 * Used by the vault backend tests and by the fault-injection suite. Everything it records
 * (`requests`) stays in memory.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { TransitError, TransitStore, type TransitKey } from './transit.js';

export interface FakeVaultTls {
  cert: string | Buffer;
  key: string | Buffer;
  /** CA that signs client certificates: enables mutual TLS and `auth/cert/login`. */
  clientCa?: string | Buffer;
  /** Refuse TLS connections without a valid client certificate (default false: optional). */
  requireClientCert?: boolean;
}

export interface FakeVaultOptions {
  tls?: FakeVaultTls;
  /** A token that never expires and may do everything (default "root"). */
  rootToken?: string;
  /** Clock in ms (default Date.now), for token TTLs and key creation times. */
  clock?: () => number;
}

/** Where a Transit key lives. */
export interface KeyLocation {
  mount?: string;
  namespace?: string;
}

/** One injected fault. `match` limits it to requests whose path (after /v1/) contains or matches it. */
export type Fault = { match?: string | RegExp } & (
  | { status: number; errors?: string[]; headers?: Record<string, string> }
  | { hang: true }
  | { drop: true }
  | { delayMs: number }
  /** Answer a decrypt normally, but with one byte of the plaintext flipped (a corrupted response). */
  | { corruptPlaintext: true }
);

export interface SeenRequest {
  method: string;
  /** Path after /v1/, without query. */
  path: string;
  namespace?: string;
  /** The token presented (X-Vault-Token or Authorization: Bearer), if any. */
  token?: string;
  body: Record<string, unknown>;
  /** HTTP status answered (undefined for hangs and drops). */
  status?: number;
  /** Whether the connection presented a verified client certificate. */
  clientCert: boolean;
}

export interface TokenOptions {
  /** Lifetime in seconds; 0 means it never expires. Default 3600. */
  ttlSeconds?: number;
  renewable?: boolean;
  /** Hard cap on renewals, in seconds from issue (default: none). */
  maxTtlSeconds?: number;
  namespace?: string;
  policies?: string[];
}

interface FakeToken {
  id: string;
  accessor: string;
  namespace: string;
  policies: string[];
  ttlMs: number;
  issuedAt: number;
  expiresAt: number; // 0 = never
  maxExpiresAt: number; // 0 = no cap
  renewable: boolean;
  revoked: boolean;
  via: string;
}

export interface LoginRoleOptions {
  mount?: string;
  namespace?: string;
  ttlSeconds?: number;
  renewable?: boolean;
  maxTtlSeconds?: number;
  policies?: string[];
}

interface LoginRole extends LoginRoleOptions {
  kind: 'kubernetes' | 'approle' | 'cert';
  check: (body: Record<string, unknown>, clientCert: boolean) => string | undefined; // error message or undefined
}

export class FakeVault {
  readonly requests: SeenRequest[] = [];
  /** FIFO of injected faults; the first one that matches a request is used once. */
  faults: Fault[] = [];
  /** Decrypt answers still to corrupt (set by `corruptPlaintext` faults). */
  private corruptDecrypts = 0;
  /** Delay added to every answer. */
  latencyMs = 0;
  /** Fraction (0..1) of requests answered 429 (rate limit quota exceeded). */
  throttleRatio = 0;
  /** Answer 503 "Vault is sealed" to everything but sys/health. */
  sealed = false;
  /** Answer like a standby that cannot reach the active node. */
  standby = false;
  /** Drop every connection (an outage). */
  down = false;
  readonly rootToken: string;

  private readonly clock: () => number;
  private readonly server: http.Server | https.Server;
  private readonly mounts = new Map<string, TransitStore>();
  private readonly tokens = new Map<string, FakeToken>();
  private readonly roles = new Map<string, LoginRole>();
  private baseUrl = '';

  constructor(private readonly options: FakeVaultOptions = {}) {
    this.clock = options.clock ?? Date.now;
    this.rootToken = options.rootToken ?? 'root';
    this.tokens.set(this.rootToken, {
      id: this.rootToken,
      accessor: randomUUID(),
      namespace: '',
      policies: ['root'],
      ttlMs: 0,
      issuedAt: this.clock(),
      expiresAt: 0,
      maxExpiresAt: 0,
      renewable: false,
      revoked: false,
      via: 'root',
    });
    this.mountTransit('transit');
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => this.onRequest(req, res);
    const tls = options.tls;
    this.server = tls
      ? https.createServer(
          {
            cert: tls.cert,
            key: tls.key,
            ca: tls.clientCa,
            requestCert: tls.clientCa !== undefined,
            rejectUnauthorized: tls.requireClientCert ?? false,
          },
          handler,
        )
      : http.createServer(handler);
  }

  /** Starts listening; resolves to the base URL (no /v1), e.g. http://127.0.0.1:34567. */
  listen(port = 0, host = '127.0.0.1'): Promise<string> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        const addr = this.server.address() as AddressInfo;
        const h = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
        this.baseUrl = `${this.options.tls ? 'https' : 'http'}://${h}:${addr.port}`;
        resolve(this.baseUrl);
      });
    });
  }

  get url(): string {
    return this.baseUrl;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  // ---- Transit keys -------------------------------------------------------------------------

  /** Enables a Transit engine at `mount` in `namespace` ("" = root). The root `transit` mount exists from the start. */
  mountTransit(mount: string, namespace = ''): TransitStore {
    const id = mountId(namespace, mount);
    let store = this.mounts.get(id);
    if (!store) {
      store = new TransitStore(this.clock);
      this.mounts.set(id, store);
    }
    return store;
  }

  createKey(name: string, where: KeyLocation = {}): TransitKey {
    return this.store(where).create(name);
  }

  /** Adds a key version; returns the new latest version. */
  rotateKey(name: string, where: KeyLocation = {}): number {
    return this.store(where).rotate(name).latest;
  }

  configureKey(
    name: string,
    cfg: { minDecryptionVersion?: number; minEncryptionVersion?: number; deletionAllowed?: boolean },
    where: KeyLocation = {},
  ): void {
    this.store(where).configure(name, cfg);
  }

  /** Deletes a key (sets deletion_allowed first, like an operator would). */
  deleteKey(name: string, where: KeyLocation = {}): void {
    const store = this.store(where);
    store.configure(name, { deletionAllowed: true });
    store.delete(name);
  }

  key(name: string, where: KeyLocation = {}): TransitKey {
    return this.store(where).get(name);
  }

  // ---- Tokens and auth methods --------------------------------------------------------------

  issueToken(opts: TokenOptions = {}, via = 'token'): string {
    const now = this.clock();
    const ttlMs = (opts.ttlSeconds ?? 3600) * 1000;
    const token: FakeToken = {
      id: `hvs.${randomBytes(18).toString('base64url')}`,
      accessor: randomUUID(),
      namespace: trimSlashes(opts.namespace ?? ''),
      policies: opts.policies ?? ['default', 'kms-plugin'],
      ttlMs,
      issuedAt: now,
      expiresAt: ttlMs === 0 ? 0 : now + ttlMs,
      maxExpiresAt: opts.maxTtlSeconds ? now + opts.maxTtlSeconds * 1000 : 0,
      renewable: opts.renewable ?? true,
      revoked: false,
      via,
    };
    this.tokens.set(token.id, token);
    return token.id;
  }

  revokeToken(token: string): void {
    const t = this.tokens.get(token);
    if (t) t.revoked = true;
  }

  /** Makes a token expire now (as if its TTL ran out). */
  expireToken(token: string): void {
    const t = this.tokens.get(token);
    if (t) t.expiresAt = this.clock() - 1;
  }

  /** Expires every token except the root token; returns how many. */
  expireAllTokens(): number {
    let n = 0;
    for (const t of this.tokens.values()) {
      if (t.id === this.rootToken || !this.isLive(t)) continue;
      t.expiresAt = this.clock() - 1;
      n += 1;
    }
    return n;
  }

  /** Seconds a token has left (Infinity for non-expiring, 0 for dead or unknown). */
  tokenTtl(token: string): number {
    const t = this.tokens.get(token);
    if (!t || !this.isLive(t)) return 0;
    return t.expiresAt === 0 ? Infinity : (t.expiresAt - this.clock()) / 1000;
  }

  /** Tokens issued by logins (not the root token), newest last. */
  issuedTokens(): string[] {
    return [...this.tokens.values()].filter((t) => t.via !== 'root').map((t) => t.id);
  }

  /** Kubernetes auth: `POST auth/<mount>/login {role, jwt}` succeeds for this role and JWT. */
  addKubernetesRole(role: string, jwt: string, opts: LoginRoleOptions = {}): void {
    this.addRole(opts.mount ?? 'kubernetes', role, {
      ...opts,
      kind: 'kubernetes',
      check: (body) => (body.jwt === jwt ? undefined : 'permission denied'),
    });
  }

  /** AppRole: `POST auth/<mount>/login {role_id, secret_id}`. */
  addAppRole(roleId: string, secretId: string, opts: LoginRoleOptions = {}): void {
    this.addRole(opts.mount ?? 'approle', roleId, {
      ...opts,
      kind: 'approle',
      check: (body) => (body.secret_id === secretId ? undefined : 'invalid role or secret ID'),
    });
  }

  /** TLS certificate auth: `POST auth/<mount>/login {name?}` with a client certificate signed by `tls.clientCa`. */
  addCertRole(name: string, opts: LoginRoleOptions = {}): void {
    this.addRole(opts.mount ?? 'cert', name, {
      ...opts,
      kind: 'cert',
      check: (_body, clientCert) =>
        clientCert ? undefined : 'invalid certificate or no client certificate supplied',
    });
  }

  /** Requests whose path matches, e.g. `count(/\/encrypt\//)`. */
  count(match: string | RegExp, method?: string): number {
    return this.requests.filter(
      (r) => matches(match, r.path) && (method === undefined || r.method === method),
    ).length;
  }

  // ---- HTTP -----------------------------------------------------------------------------------

  private addRole(mount: string, name: string, role: LoginRole): void {
    this.roles.set(`${trimSlashes(role.namespace ?? '')}|${trimSlashes(mount)}|${name}`, role);
  }

  private store(where: KeyLocation): TransitStore {
    const store = this.mounts.get(mountId(where.namespace ?? '', where.mount ?? 'transit'));
    if (!store)
      throw new Error(
        `fake vault: no transit mount ${where.mount ?? 'transit'} in namespace "${where.namespace ?? ''}"`,
      );
    return store;
  }

  private isLive(t: FakeToken): boolean {
    return !t.revoked && (t.expiresAt === 0 || this.clock() < t.expiresAt);
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void this.handle(req, res, Buffer.concat(chunks).toString('utf8'));
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse, raw: string): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const path = url.pathname.replace(/^\/v1\//, '').replace(/\/+$/, '');
    const namespace = trimSlashes(String(req.headers['x-vault-namespace'] ?? ''));
    const auth = req.headers.authorization;
    const headerToken = req.headers['x-vault-token'];
    const token =
      typeof headerToken === 'string'
        ? headerToken
        : auth?.startsWith('Bearer ')
          ? auth.slice('Bearer '.length)
          : undefined;
    const clientCert = Boolean((req.socket as TLSSocket).authorized);
    let body: Record<string, unknown> = {};
    let badJson = false;
    if (raw.trim() !== '') {
      try {
        const parsed: unknown = JSON.parse(raw);
        if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
          body = parsed as Record<string, unknown>;
        else badJson = true;
      } catch {
        badJson = true;
      }
    }
    const seen: SeenRequest = { method: req.method ?? 'GET', path, body, clientCert };
    if (namespace) seen.namespace = namespace;
    if (token !== undefined) seen.token = token;
    this.requests.push(seen);

    const send = (status: number, payload?: unknown, headers: Record<string, string> = {}): void => {
      seen.status = status;
      if (payload === undefined) {
        res.writeHead(status, headers).end();
        return;
      }
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(payload));
    };
    const fail = (status: number, ...errors: string[]): void => send(status, { errors });

    if (this.down) {
      req.socket.destroy();
      return;
    }
    const i = this.faults.findIndex((f) => f.match === undefined || matches(f.match, path));
    if (i >= 0) {
      const [fault] = this.faults.splice(i, 1);
      if ('hang' in fault) return; // never answer; close() destroys the socket
      if ('drop' in fault) {
        req.socket.destroy();
        return;
      }
      if ('corruptPlaintext' in fault) this.corruptDecrypts += 1;
      else if ('delayMs' in fault) await delay(fault.delayMs);
      else {
        send(fault.status, { errors: fault.errors ?? [] }, fault.headers);
        return;
      }
    }
    if (this.latencyMs > 0) await delay(this.latencyMs);

    if (path === 'sys/health') {
      const status = this.sealed ? 503 : this.standby ? 429 : 200;
      send(status, {
        initialized: true,
        sealed: this.sealed,
        standby: this.standby,
        version: '1.17.0+fake',
        cluster_name: 'fake',
      });
      return;
    }
    // Seal and unseal over HTTP (root token only), so out-of-process tests can cause an outage.
    // Real Vault's unseal takes key shares; the fake accepts any body.
    if ((path === 'sys/seal' || path === 'sys/unseal') && (req.method === 'POST' || req.method === 'PUT')) {
      if (token !== this.rootToken) return fail(403, 'permission denied');
      this.sealed = path === 'sys/seal';
      return send(200, { sealed: this.sealed, t: 1, n: 1, progress: 0 });
    }
    if (this.sealed) return fail(503, 'Vault is sealed');
    if (this.standby) return fail(503, 'local node not active but active cluster node not found');
    if (this.throttleRatio > 0 && Math.random() < this.throttleRatio) {
      return fail(429, `request path "${path}": rate limit quota exceeded`);
    }
    if (badJson) return fail(400, 'failed to parse JSON input');

    const login = /^auth\/(.+)\/login$/.exec(path);
    if (login && req.method === 'POST') return this.login(namespace, login[1], body, clientCert, send, fail);

    const t = token === undefined ? undefined : this.tokens.get(token);
    if (!t || !this.isLive(t) || !inNamespace(namespace, t.namespace)) return fail(403, 'permission denied');

    if (path === 'auth/token/lookup-self' && req.method === 'GET') return send(200, { data: this.lookup(t) });
    if (path === 'auth/token/renew-self' && req.method === 'POST') {
      if (!t.renewable) return fail(400, 'lease is not renewable');
      const now = this.clock();
      const inc = typeof body.increment === 'number' ? body.increment * 1000 : t.ttlMs;
      t.expiresAt = now + inc;
      if (t.maxExpiresAt && t.expiresAt > t.maxExpiresAt) t.expiresAt = t.maxExpiresAt;
      return send(200, { auth: this.authBlock(t) });
    }
    this.transit(req.method ?? 'GET', namespace, path, body, send, fail);
  }

  private transit(
    method: string,
    namespace: string,
    path: string,
    body: Record<string, unknown>,
    send: (status: number, payload?: unknown) => void,
    fail: (status: number, ...errors: string[]) => void,
  ): void {
    const op = /^(.+)\/(encrypt|decrypt)\/([^/]+)$/.exec(path);
    const keys = /^(.+)\/keys\/([^/]+)(?:\/(rotate|config))?$/.exec(path);
    const mount = op?.[1] ?? keys?.[1];
    const store = mount === undefined ? undefined : this.mounts.get(mountId(namespace, mount));
    if (!store) return fail(404, `no handler for route "${path}". route entry not found.`);
    try {
      if (op && method === 'POST') {
        if (op[2] === 'encrypt') {
          return send(200, {
            data: store.encrypt(op[3], body.plaintext, body.associated_data, body.key_version),
          });
        }
        const data = store.decrypt(op[3], body.ciphertext, body.associated_data);
        if (this.corruptDecrypts > 0 && typeof data.plaintext === 'string') {
          this.corruptDecrypts -= 1;
          const plain = Buffer.from(data.plaintext, 'base64');
          plain[0] ^= 0x20;
          data.plaintext = plain.toString('base64');
        }
        return send(200, { data });
      }
      if (keys) {
        const [, , name, action] = keys;
        if (action === 'rotate' && method === 'POST') {
          store.rotate(name);
          return send(200, { data: store.describe(name) });
        }
        if (action === 'config' && method === 'POST') {
          store.configure(name, {
            minDecryptionVersion: numberOrUndefined(body.min_decryption_version),
            minEncryptionVersion: numberOrUndefined(body.min_encryption_version),
            deletionAllowed: typeof body.deletion_allowed === 'boolean' ? body.deletion_allowed : undefined,
          });
          return send(200, { data: store.describe(name) });
        }
        if (action === undefined && method === 'GET') return send(200, { data: store.describe(name) });
        if (action === undefined && method === 'POST') {
          store.create(name);
          return send(204);
        }
        if (action === undefined && method === 'DELETE') {
          store.delete(name);
          return send(204);
        }
      }
      return fail(405, 'unsupported operation');
    } catch (err) {
      if (err instanceof TransitError) return fail(err.status, ...(err.message ? [err.message] : []));
      return fail(500, 'internal error');
    }
  }

  private login(
    namespace: string,
    mount: string,
    body: Record<string, unknown>,
    clientCert: boolean,
    send: (status: number, payload?: unknown) => void,
    fail: (status: number, ...errors: string[]) => void,
  ): void {
    const mountRoles = [...this.roles.entries()].filter(([k]) => k.startsWith(`${namespace}|${mount}|`));
    if (mountRoles.length === 0)
      return fail(404, `no handler for route "auth/${mount}/login". route entry not found.`);
    const kind = mountRoles[0][1].kind;
    const name = kind === 'kubernetes' ? body.role : kind === 'approle' ? body.role_id : body.name;
    let role: LoginRole | undefined;
    if (kind === 'cert' && (name === undefined || name === '')) role = mountRoles[0][1];
    else role = typeof name === 'string' ? this.roles.get(`${namespace}|${mount}|${name}`) : undefined;
    if (!role) {
      if (kind === 'kubernetes') return fail(400, `invalid role name "${String(name)}"`);
      if (kind === 'approle') return fail(400, 'invalid role or secret ID');
      return fail(400, 'invalid certificate or no client certificate supplied');
    }
    if (kind === 'kubernetes' && typeof body.jwt !== 'string') return fail(400, 'missing jwt');
    const problem = role.check(body, clientCert);
    if (problem) return fail(problem === 'permission denied' ? 403 : 400, problem);
    const id = this.issueToken(
      {
        ttlSeconds: role.ttlSeconds ?? 3600,
        renewable: role.renewable ?? true,
        maxTtlSeconds: role.maxTtlSeconds,
        namespace,
        policies: role.policies,
      },
      kind,
    );
    send(200, {
      request_id: randomUUID(),
      lease_id: '',
      renewable: false,
      lease_duration: 0,
      data: null,
      auth: this.authBlock(this.tokens.get(id)!),
    });
  }

  private authBlock(t: FakeToken): Record<string, unknown> {
    return {
      client_token: t.id,
      accessor: t.accessor,
      policies: t.policies,
      token_policies: t.policies,
      metadata: {},
      lease_duration: this.remainingSeconds(t),
      renewable: t.renewable,
      token_type: 'service',
      orphan: true,
    };
  }

  private lookup(t: FakeToken): Record<string, unknown> {
    return {
      accessor: t.accessor,
      creation_time: Math.floor(t.issuedAt / 1000),
      creation_ttl: Math.floor(t.ttlMs / 1000),
      display_name: t.via,
      expire_time: t.expiresAt === 0 ? null : new Date(t.expiresAt).toISOString(),
      explicit_max_ttl: t.maxExpiresAt ? Math.floor((t.maxExpiresAt - t.issuedAt) / 1000) : 0,
      id: t.id,
      issue_time: new Date(t.issuedAt).toISOString(),
      meta: null,
      num_uses: 0,
      orphan: true,
      path: `auth/${t.via}/login`,
      policies: t.policies,
      renewable: t.renewable,
      ttl: this.remainingSeconds(t),
      type: 'service',
    };
  }

  private remainingSeconds(t: FakeToken): number {
    return t.expiresAt === 0 ? 0 : Math.max(0, Math.floor((t.expiresAt - this.clock()) / 1000));
  }
}

function mountId(namespace: string, mount: string): string {
  return `${trimSlashes(namespace)}|${trimSlashes(mount)}`;
}

function trimSlashes(s: string): string {
  return s.replace(/^\/+|\/+$/g, '');
}

function inNamespace(requestNs: string, tokenNs: string): boolean {
  return tokenNs === '' || requestNs === tokenNs || requestNs.startsWith(`${tokenNs}/`);
}

function matches(match: string | RegExp, path: string): boolean {
  return typeof match === 'string' ? path.includes(match) : match.test(path);
}

function numberOrUndefined(v: unknown): number | undefined {
  return typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : undefined;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
