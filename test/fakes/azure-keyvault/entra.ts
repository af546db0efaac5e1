/**
 * A fake Entra ID (Azure AD) token endpoint over HTTPS for the real @azure/identity credentials
 * (`authorityHost` pointed here, `disableInstanceDiscovery: true`):
 *
 * - GET  /{tenant}/v2.0/.well-known/openid-configuration
 * - POST /{tenant}/oauth2/v2.0/token  (client_credentials with client_secret, or client_assertion
 *   for workload identity, or a client assertion JWT signed with a registered certificate's key)
 *
 * It issues opaque random access tokens and remembers them, so the Key Vault fake can accept only
 * tokens this fake issued (`isIssued`). It records requests without their secrets.
 */
import { X509Certificate, constants, randomBytes, verify } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpsFake } from './https-fake.js';
import { makeTestPki, type TestPki } from './certs.js';

export interface TokenRequestRecord {
  tenant: string;
  clientId: string;
  grant: 'client_secret' | 'client_assertion' | 'other';
  scope: string;
  status: number;
}

export class FakeEntraId {
  readonly pki: TestPki;
  readonly requests: TokenRequestRecord[] = [];
  /** Seconds until issued tokens expire. */
  expiresIn = 3600;
  /** Answer the next N token requests with this status (e.g. 503). */
  failNext: { status: number; count: number } | undefined;
  private readonly secrets = new Map<string, string>();
  private readonly assertions = new Map<string, string>();
  private readonly certificates = new Map<string, X509Certificate>();
  private readonly issued = new Map<string, { clientId: string; scope: string; expires: number }>();
  private readonly https: HttpsFake;

  constructor(
    readonly tenantId = '00000000-0000-0000-0000-0000000000aa',
    pki?: TestPki,
  ) {
    this.pki = pki ?? makeTestPki();
    this.https = new HttpsFake(this.pki, (req, res) => {
      this.handle(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
      });
    });
  }

  /** Registers an application that authenticates with a client secret. */
  addClientSecret(clientId: string, secret: string): void {
    this.secrets.set(clientId, secret);
  }

  /** Registers a workload identity: the federated (service-account) token it must present. */
  addFederatedCredential(clientId: string, assertion: string): void {
    this.assertions.set(clientId, assertion);
  }

  /** Registers an application that authenticates with a certificate (replaces the previous one). */
  addClientCertificate(clientId: string, certPem: string): void {
    this.certificates.set(clientId, new X509Certificate(certPem));
  }

  /** A client assertion signed (RS256 or PS256) by the key of the application's certificate. */
  private signedByCertificate(clientId: string, jwt: string): boolean {
    const cert = this.certificates.get(clientId);
    const parts = jwt.split('.');
    if (!cert || parts.length !== 3) return false;
    try {
      const header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8')) as { alg?: string };
      const padding = header.alg === 'PS256' ? constants.RSA_PKCS1_PSS_PADDING : constants.RSA_PKCS1_PADDING;
      return verify(
        'sha256',
        Buffer.from(`${parts[0]}.${parts[1]}`),
        { key: cert.publicKey, padding, saltLength: 32 },
        Buffer.from(parts[2], 'base64url'),
      );
    } catch {
      return false;
    }
  }

  isIssued(token: string, scopePrefix?: string): boolean {
    const t = this.issued.get(token);
    if (!t || t.expires < Date.now()) return false;
    return scopePrefix === undefined || t.scope.startsWith(scopePrefix);
  }

  get issuedCount(): number {
    return this.issued.size;
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

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? '/', this.url);
    const json = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(body));
    };
    let m = /^\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration$/.exec(url.pathname);
    if (m && req.method === 'GET') {
      const t = m[1];
      json(200, {
        token_endpoint: `${this.url}/${t}/oauth2/v2.0/token`,
        authorization_endpoint: `${this.url}/${t}/oauth2/v2.0/authorize`,
        issuer: `${this.url}/${t}/v2.0`,
        jwks_uri: `${this.url}/${t}/discovery/v2.0/keys`,
        response_types_supported: ['code', 'id_token', 'code id_token', 'token id_token', 'token'],
        token_endpoint_auth_methods_supported: [
          'client_secret_post',
          'private_key_jwt',
          'client_secret_basic',
        ],
      });
      return;
    }
    m = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(url.pathname);
    if (!m || req.method !== 'POST') {
      json(404, { error: 'not_found' });
      return;
    }
    const tenant = m[1];
    const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    const clientId = form.get('client_id') ?? '';
    const scope = form.get('scope') ?? '';
    const secret = form.get('client_secret');
    const assertion = form.get('client_assertion');
    const record: TokenRequestRecord = {
      tenant,
      clientId,
      grant: secret !== null ? 'client_secret' : assertion !== null ? 'client_assertion' : 'other',
      scope,
      status: 0,
    };
    this.requests.push(record);
    const fail = (status: number, error: string, description: string): void => {
      record.status = status;
      json(status, {
        error,
        error_description: description,
        error_codes: [7000215],
        timestamp: new Date().toISOString(),
      });
    };
    if (this.failNext && this.failNext.count > 0) {
      this.failNext.count -= 1;
      fail(this.failNext.status, 'temporarily_unavailable', 'AADSTS50000: injected failure.');
      return;
    }
    if (tenant !== this.tenantId) {
      fail(400, 'invalid_request', `AADSTS90002: Tenant '${tenant}' not found.`);
      return;
    }
    const ok =
      (secret !== null && this.secrets.get(clientId) === secret) ||
      (assertion !== null &&
        form.get('client_assertion_type') === 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' &&
        (this.assertions.get(clientId) === assertion || this.signedByCertificate(clientId, assertion)));
    if (!ok || form.get('grant_type') !== 'client_credentials') {
      fail(
        401,
        'invalid_client',
        `AADSTS7000215: Invalid client secret or assertion provided for application ${clientId}.`,
      );
      return;
    }
    const token = `fake-at-${randomBytes(18).toString('base64url')}`;
    this.issued.set(token, { clientId, scope, expires: Date.now() + this.expiresIn * 1000 });
    record.status = 200;
    json(200, {
      token_type: 'Bearer',
      expires_in: this.expiresIn,
      ext_expires_in: this.expiresIn,
      access_token: token,
    });
  }
}
