/**
 * Vault authentication: hands out a token for each request and keeps it alive.
 *
 * - `token`: read from a file and re-read when the file changes (checked at every call, and at
 *   once after a 403), so Vault Agent or an operator can replace it without a restart.
 * - `kubernetes`, `approle`, `cert`: log in (`auth/<mount>/login`) with the JWT / role_id /
 *   secret_id files as they are at login time (projected service-account tokens rotate).
 *
 * Every file goes through CredentialFile (../credential-file.ts): a changed file is picked up at
 * the next call, a bad new one is logged and counted and the old value kept until it expires.
 *
 * Tokens are renewed (renew-self) at about 2/3 of their TTL; a non-renewable or capped token is
 * replaced by a new login at the same point. A 403 triggers one fresh login (or file re-read). The
 * remaining TTL is exported as `credentialTtl`, renewals and logins are counted in
 * `credentialRenewals`. Tokens, JWTs and secret IDs are never logged or put in errors.
 */
import type { VaultConfig } from '../../config/providers/vault.js';
import { timeoutSignal } from '../../deadline.js';
import type { Logger } from '../../observability/logger.js';
import type { ProviderMetrics } from '../../observability/metrics.js';
import { CorruptError, PermissionDeniedError, PluginError, UnavailableError } from '../errors.js';
import { CredentialFile, jwtExpiry, parseSecretText } from '../credential-file.js';
import type { RemoteCaller } from '../remote.js';
import type { VaultOperation } from './errors.js';
import type { VaultHttp } from './http.js';

export interface VaultAuthOptions {
  /** Fraction of a token's TTL after which it is renewed or replaced (default 2/3). */
  renewFraction?: number;
  /** Minimum interval between token-file checks (default 0: every call). */
  tokenFileCheckMs?: number;
  /** Deadline for a background renewal or login (default 10 s). */
  backgroundTimeoutMs?: number;
  /** A token closer than this to expiry is replaced before use (default 2000 ms). */
  expiryMarginMs?: number;
  /** Least time between two logins forced by a 403 (default 1000 ms). */
  forcedLoginIntervalMs?: number;
}

interface TokenState {
  token: string;
  obtainedAt: number;
  /** Lease length when obtained or last renewed (ms); 0 = does not expire or unknown. */
  ttlMs: number;
  /** Epoch ms; undefined = never expires or unknown. */
  expiresAt?: number;
  renewable: boolean;
}

interface AuthResponse {
  auth?: { client_token?: unknown; lease_duration?: unknown; renewable?: unknown };
}

interface LookupResponse {
  data?: { ttl?: unknown; renewable?: unknown };
}

const PROVIDER = 'vault';

export class VaultAuth {
  private current: TokenState | undefined;
  private pendingLogin: Promise<TokenState> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly gaugeTimer: NodeJS.Timeout;
  private lastFileCheck = 0;
  private lastForcedLogin = 0;
  private readonly forcedLoginIntervalMs: number;
  private closed = false;
  private readonly renewFraction: number;
  private readonly tokenFileCheckMs: number;
  private readonly backgroundTimeoutMs: number;
  private readonly expiryMarginMs: number;
  private readonly files = new Map<string, CredentialFile<string>>();

  constructor(
    private readonly config: VaultConfig['auth'],
    private readonly http: VaultHttp,
    private readonly caller: RemoteCaller<VaultOperation>,
    private readonly logger: Logger,
    private readonly metrics: ProviderMetrics,
    options: VaultAuthOptions = {},
  ) {
    this.renewFraction = options.renewFraction ?? 2 / 3;
    this.tokenFileCheckMs = options.tokenFileCheckMs ?? 0;
    this.backgroundTimeoutMs = options.backgroundTimeoutMs ?? 10_000;
    this.expiryMarginMs = options.expiryMarginMs ?? 2000;
    this.forcedLoginIntervalMs = options.forcedLoginIntervalMs ?? 1000;
    this.gaugeTimer = setInterval(() => this.updateGauge(), 5000);
    this.gaugeTimer.unref();
    const watch = (path: string | undefined, field: string): void => {
      if (path)
        this.files.set(
          field,
          new CredentialFile({
            path,
            field,
            provider: PROVIDER,
            parse: parseSecretText,
            expiresAt: jwtExpiry,
            logger,
            metrics,
          }),
        );
    };
    watch(config.tokenFile, 'vault.auth.tokenFile');
    watch(config.jwtFile, 'vault.auth.jwtFile');
    watch(config.roleIdFile, 'vault.auth.roleIdFile');
    watch(config.secretIdFile, 'vault.auth.secretIdFile');
  }

  get method(): VaultConfig['auth']['method'] {
    return this.config.method;
  }

  /**
   * A token to send now; logs in (or reads the token file) first if needed. Called inside a
   * RemoteCaller attempt, which stops waiting for a login when the attempt's signal fires.
   */
  async token(): Promise<string> {
    if (this.closed) throw new UnavailableError('vault auth: provider closed', { retryable: false });
    if (this.config.method === 'token') return this.fromFile(false).token;
    // Re-read changed login files now (the value is used at the next login; errors surface there).
    for (const f of this.files.values()) {
      try {
        f.get();
      } catch {
        // reported by the login that needs it
      }
    }
    const cur = this.current;
    if (cur && !this.expiringSoon(cur)) return cur.token;
    return (await this.login()).token;
  }

  /**
   * Vault answered 403 to a request made with `stale`. Gets a different token if that can help
   * (a fresh login, or a changed token file). Resolves true when a retry makes sense.
   */
  async recover(stale: string): Promise<boolean> {
    if (this.closed) return false;
    if (this.current && this.current.token !== stale) return true;
    if (this.config.method === 'token') return this.fromFile(true).token !== stale;
    if (this.pendingLogin) {
      await this.pendingLogin;
      return true;
    }
    // A token that was denied right after a forced login points at the policy, not at expiry.
    if (Date.now() - this.lastForcedLogin < this.forcedLoginIntervalMs) return false;
    this.lastForcedLogin = Date.now();
    this.logger.warn(
      { provider: PROVIDER, method: this.config.method },
      'vault denied the current token; logging in again',
    );
    if (this.current?.token === stale) this.current = undefined;
    await this.login();
    return true;
  }

  /** Remaining token lifetime in seconds (undefined when unknown or non-expiring). */
  ttlSeconds(): number | undefined {
    const exp = this.current?.expiresAt;
    return exp === undefined ? undefined : Math.max(0, (exp - Date.now()) / 1000);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    clearInterval(this.gaugeTimer);
    this.current = undefined;
  }

  // ---- token file -----------------------------------------------------------------------------

  private fromFile(force: boolean): TokenState {
    const now = Date.now();
    if (!force && this.current && now - this.lastFileCheck < this.tokenFileCheckMs) return this.current;
    this.lastFileCheck = now;
    const token = this.secretFile('vault.auth.tokenFile');
    if (this.current?.token === token) return this.current;
    const first = this.current === undefined;
    this.current = { token, obtainedAt: now, ttlMs: 0, renewable: false };
    if (this.timer) clearTimeout(this.timer);
    this.metrics.credentialRenewals.inc({ provider: PROVIDER, outcome: 'reloaded' });
    this.logger.info(
      { provider: PROVIDER, file: this.config.tokenFile, changed: !first },
      first ? 'vault token loaded from file' : 'vault token file changed; using the new token',
    );
    void this.lookupInBackground(this.current);
    return this.current;
  }

  /** The current content of a watched credential file (re-read if it changed). */
  private secretFile(field: string): string {
    const file = this.files.get(field);
    if (!file) throw new PermissionDeniedError(`vault: ${field} is not set`);
    try {
      return file.get();
    } catch (err) {
      throw new PermissionDeniedError(`vault: ${(err as Error).message}`);
    }
  }

  /** Learns a file token's TTL and renewability (for the metric and for renewal). */
  private async lookupInBackground(state: TokenState): Promise<void> {
    try {
      const res = await this.authCall<LookupResponse>(
        'lookup_self',
        'GET',
        'auth/token/lookup-self',
        undefined,
        state.token,
        this.bgSignal(),
      );
      if (this.current !== state) return;
      const ttl = asNumber(res?.data?.ttl);
      state.renewable = res?.data?.renewable === true;
      if (ttl !== undefined && ttl > 0) {
        state.ttlMs = ttl * 1000;
        state.expiresAt = Date.now() + ttl * 1000;
        state.obtainedAt = Date.now();
      }
      this.logger.info(
        { provider: PROVIDER, ttlSeconds: ttl ?? 0, renewable: state.renewable },
        'vault token looked up',
      );
      this.updateGauge();
      this.schedule(state);
    } catch (err) {
      this.logger.warn({ provider: PROVIDER, err }, 'vault token lookup failed; the token may be invalid');
    }
  }

  // ---- login methods --------------------------------------------------------------------------

  /** The login in flight (one at a time, bounded by its own background deadline), or a new one. */
  private login(): Promise<TokenState> {
    if (!this.pendingLogin) {
      const shared = this.doLogin(this.bgSignal()).finally(() => {
        if (this.pendingLogin === shared) this.pendingLogin = undefined;
      });
      this.pendingLogin = shared;
    }
    return this.pendingLogin;
  }

  private async doLogin(signal: AbortSignal): Promise<TokenState> {
    const { method } = this.config;
    const mount = this.config.mount ?? method;
    let body: Record<string, unknown>;
    switch (method) {
      case 'kubernetes':
        body = { role: this.config.role, jwt: this.secretFile('vault.auth.jwtFile') };
        break;
      case 'approle':
        body = {
          role_id: this.secretFile('vault.auth.roleIdFile'),
          secret_id: this.secretFile('vault.auth.secretIdFile'),
        };
        break;
      case 'cert':
        body = this.config.role ? { name: this.config.role } : {};
        break;
      default:
        throw new PermissionDeniedError(`vault: auth method ${method} does not log in`);
    }
    try {
      const res = await this.authCall<AuthResponse>(
        'login',
        'POST',
        `auth/${mount}/login`,
        body,
        undefined,
        signal,
      );
      const state = parseAuth(res, `vault login (auth/${mount})`);
      this.current = state;
      this.metrics.credentialRenewals.inc({ provider: PROVIDER, outcome: 'login' });
      this.logger.info(
        { provider: PROVIDER, method, mount, ttlSeconds: state.ttlMs / 1000, renewable: state.renewable },
        'vault login succeeded',
      );
      this.updateGauge();
      this.schedule(state);
      return state;
    } catch (err) {
      this.metrics.credentialRenewals.inc({ provider: PROVIDER, outcome: 'login_failed' });
      this.logger.error({ provider: PROVIDER, method, mount, err }, 'vault login failed');
      throw err;
    }
  }

  // ---- renewal --------------------------------------------------------------------------------

  private schedule(state: TokenState, delayOverrideMs?: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.closed || state.expiresAt === undefined || state.ttlMs <= 0) return;
    const canLogin = this.config.method !== 'token';
    if (!state.renewable && !canLogin) return;
    const at = state.obtainedAt + state.ttlMs * this.renewFraction;
    const delay = delayOverrideMs ?? Math.max(0, at - Date.now());
    this.timer = setTimeout(() => void this.refresh(state), delay);
    this.timer.unref();
  }

  private async refresh(state: TokenState): Promise<void> {
    if (this.closed || this.current !== state) return;
    const canLogin = this.config.method !== 'token';
    if (state.renewable) {
      try {
        const res = await this.authCall<AuthResponse>(
          'renew_self',
          'POST',
          'auth/token/renew-self',
          {},
          state.token,
          this.bgSignal(),
        );
        const lease = asNumber(res?.auth?.lease_duration) ?? 0;
        if (this.current !== state) return;
        const previousTtl = state.ttlMs;
        state.obtainedAt = Date.now();
        state.ttlMs = lease * 1000;
        state.expiresAt = lease > 0 ? Date.now() + lease * 1000 : state.expiresAt;
        this.metrics.credentialRenewals.inc({ provider: PROVIDER, outcome: 'renewed' });
        this.logger.info({ provider: PROVIDER, ttlSeconds: lease }, 'vault token renewed');
        this.updateGauge();
        // A lease cut short by the token's max TTL: log in again instead of renewing ever shorter leases.
        if (canLogin && lease * 1000 < previousTtl * this.renewFraction) {
          await this.backgroundLogin(state);
          return;
        }
        this.schedule(state);
        return;
      } catch (err) {
        this.metrics.credentialRenewals.inc({ provider: PROVIDER, outcome: 'renew_failed' });
        const kind = err instanceof PluginError ? err.kind : 'internal';
        this.logger.warn({ provider: PROVIDER, kind, err }, 'vault token renewal failed');
        if (this.current !== state) return;
        if (kind === 'permission_denied') {
          if (canLogin) await this.backgroundLogin(state);
          else this.fromFile(true);
          return;
        }
        this.retryLater(state);
        return;
      }
    }
    if (canLogin) await this.backgroundLogin(state);
  }

  private async backgroundLogin(state: TokenState): Promise<void> {
    try {
      await this.login();
    } catch {
      // Logged by doLogin; keep the old token while it lasts and try again.
      if (this.current === state) this.retryLater(state);
    }
  }

  private retryLater(state: TokenState): void {
    const left = (state.expiresAt ?? 0) - Date.now();
    if (left <= this.expiryMarginMs) return; // the next request logs in synchronously
    this.schedule(state, Math.min(30_000, Math.max(1000, left / 2)));
  }

  // ---- helpers --------------------------------------------------------------------------------

  private async authCall<T>(
    op: VaultOperation,
    method: 'GET' | 'POST',
    path: string,
    body: Record<string, unknown> | undefined,
    token: string | undefined,
    signal: AbortSignal,
  ): Promise<T | undefined> {
    return this.caller.call(op, signal, (attempt) =>
      this.http.request<T>(method, path, { body, token, signal: attempt }),
    );
  }

  private bgSignal(): AbortSignal {
    return timeoutSignal(this.backgroundTimeoutMs);
  }

  private expiringSoon(state: TokenState): boolean {
    return state.expiresAt !== undefined && state.expiresAt - Date.now() < this.expiryMarginMs;
  }

  private updateGauge(): void {
    const ttl = this.ttlSeconds();
    if (ttl === undefined) this.metrics.credentialTtl.remove({ provider: PROVIDER });
    else this.metrics.credentialTtl.set({ provider: PROVIDER }, Math.round(ttl));
  }
}

function parseAuth(res: AuthResponse | undefined, what: string): TokenState {
  const token = res?.auth?.client_token;
  if (typeof token !== 'string' || token === '')
    throw new CorruptError(`${what}: the response carries no client_token`);
  const lease = asNumber(res?.auth?.lease_duration) ?? 0;
  const now = Date.now();
  return {
    token,
    obtainedAt: now,
    ttlMs: lease * 1000,
    expiresAt: lease > 0 ? now + lease * 1000 : undefined,
    renewable: res?.auth?.renewable === true,
  };
}

function asNumber(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && /^\d+$/.test(v)) return Number(v);
  return undefined;
}
