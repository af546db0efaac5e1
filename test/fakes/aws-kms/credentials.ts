/**
 * Fakes for the AWS credential chain:
 *
 * - FakeContainerCredentials: the EKS Pod Identity / ECS container credentials endpoint
 *   (AWS_CONTAINER_CREDENTIALS_FULL_URI + AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]).
 * - FakeSts: STS (AWS Query protocol) answering AssumeRoleWithWebIdentity (IRSA:
 *   AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN + AWS_ENDPOINT_URL_STS) and AssumeRole.
 *
 * Each hands out fresh random credentials and can register them with a FakeAwsKms, so the KMS fake
 * verifies that requests were signed with exactly those credentials.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FakeAwsKms } from './fake.js';
import { parseAuthorization } from './sigv4.js';

export interface IssuedCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
}

function issue(prefix: string, lifetimeMs: number): IssuedCredentials {
  return {
    accessKeyId: `${prefix}${randomBytes(8).toString('hex').toUpperCase()}`,
    secretAccessKey: randomBytes(30).toString('base64'),
    sessionToken: randomBytes(48).toString('base64'),
    expiration: new Date(Date.now() + lifetimeMs),
  };
}

abstract class LoopbackServer {
  private server: http.Server | undefined;
  url = '';

  protected abstract handle(req: http.IncomingMessage, body: string, res: http.ServerResponse): void;

  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => this.handle(req, Buffer.concat(chunks).toString('utf8'), res));
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    this.url = `http://${host}:${(server.address() as AddressInfo).port}`;
    return this.url;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** The container credentials endpoint (GET <path>, Authorization: <token>). */
export class FakeContainerCredentials extends LoopbackServer {
  /** Requests seen: path and whether the authorization token matched. */
  readonly requests: Array<{ path: string; authorized: boolean }> = [];
  /** Credentials issued, newest last. */
  readonly issued: IssuedCredentials[] = [];
  /** Lifetime of issued credentials. */
  lifetimeMs = 3_600_000;
  /** Registered with this KMS fake as they are issued (so it verifies signatures). */
  kms: FakeAwsKms | undefined;

  constructor(
    readonly token: string,
    readonly path = '/v1/credentials',
  ) {
    super();
  }

  get fullUri(): string {
    return `${this.url}${this.path}`;
  }

  protected handle(req: http.IncomingMessage, _body: string, res: http.ServerResponse): void {
    const authorized = req.headers.authorization === this.token;
    this.requests.push({ path: req.url ?? '', authorized });
    if (req.method !== 'GET' || req.url !== this.path) {
      res.writeHead(404).end();
      return;
    }
    if (!authorized) {
      res
        .writeHead(401, { 'content-type': 'application/json' })
        .end(JSON.stringify({ code: 'Unauthorized' }));
      return;
    }
    const c = issue('ASIACONTAINER', this.lifetimeMs);
    this.issued.push(c);
    this.kms?.addCredentials(c.accessKeyId, c.secretAccessKey, c.sessionToken);
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        AccessKeyId: c.accessKeyId,
        SecretAccessKey: c.secretAccessKey,
        Token: c.sessionToken,
        Expiration: c.expiration.toISOString(),
        AccountId: '111122223333',
      }),
    );
  }
}

export interface StsCall {
  action: string;
  roleArn?: string;
  roleSessionName?: string;
  externalId?: string;
  /** The web identity token matched `webIdentityToken`. */
  tokenMatched?: boolean;
  /** For AssumeRole: the access key that signed the request. */
  signedBy?: string;
}

/** STS: AssumeRoleWithWebIdentity (unsigned, token in the body) and AssumeRole (signed). */
export class FakeSts extends LoopbackServer {
  readonly calls: StsCall[] = [];
  readonly issued: IssuedCredentials[] = [];
  lifetimeMs = 3_600_000;
  kms: FakeAwsKms | undefined;
  /** The JWT AssumeRoleWithWebIdentity must present. */
  webIdentityToken: string | undefined;

  protected handle(req: http.IncomingMessage, body: string, res: http.ServerResponse): void {
    const form = new URLSearchParams(body);
    const action = form.get('Action') ?? '';
    const call: StsCall = {
      action,
      roleArn: form.get('RoleArn') ?? undefined,
      roleSessionName: form.get('RoleSessionName') ?? undefined,
      externalId: form.get('ExternalId') ?? undefined,
    };
    this.calls.push(call);
    const xml = (status: number, text: string): void => {
      res.writeHead(status, { 'content-type': 'text/xml', 'x-amzn-requestid': randomUUID() }).end(text);
    };
    const error = (status: number, code: string, message: string): void =>
      xml(
        status,
        `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`,
      );
    if (action !== 'AssumeRoleWithWebIdentity' && action !== 'AssumeRole') {
      return error(400, 'InvalidAction', `unsupported action ${action}`);
    }
    if (!call.roleArn) return error(400, 'ValidationError', 'RoleArn is required');
    if (action === 'AssumeRoleWithWebIdentity') {
      call.tokenMatched =
        this.webIdentityToken === undefined || form.get('WebIdentityToken') === this.webIdentityToken;
      if (!call.tokenMatched) return error(400, 'InvalidIdentityToken', 'Invalid web identity token');
    } else {
      const auth = parseAuthorization(req.headers.authorization);
      if (!auth) return error(403, 'MissingAuthenticationToken', 'Request is missing Authentication Token');
      call.signedBy = auth.accessKeyId;
    }
    const c = issue('ASIASTS', this.lifetimeMs);
    this.issued.push(c);
    this.kms?.addCredentials(c.accessKeyId, c.secretAccessKey, c.sessionToken);
    const creds = `<Credentials><AccessKeyId>${c.accessKeyId}</AccessKeyId><SecretAccessKey>${c.secretAccessKey}</SecretAccessKey><SessionToken>${c.sessionToken}</SessionToken><Expiration>${c.expiration.toISOString()}</Expiration></Credentials>`;
    const user = `<AssumedRoleUser><Arn>${call.roleArn.replace(':role/', ':assumed-role/').replace('arn:aws:iam:', 'arn:aws:sts:')}/${call.roleSessionName ?? 'session'}</Arn><AssumedRoleId>AROAFAKE:${call.roleSessionName ?? 'session'}</AssumedRoleId></AssumedRoleUser>`;
    const extra =
      action === 'AssumeRoleWithWebIdentity'
        ? '<SubjectFromWebIdentityToken>system:serviceaccount:kube-system:kms</SubjectFromWebIdentityToken>'
        : '';
    xml(
      200,
      `<${action}Response xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><${action}Result>${creds}${user}${extra}</${action}Result><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></${action}Response>`,
    );
  }
}
