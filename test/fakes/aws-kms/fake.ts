/**
 * A wire-level AWS KMS fake speaking AWS JSON 1.1 (POST /, X-Amz-Target: TrentService.<Op>), for
 * driving the real @aws-sdk/client-kms over 127.0.0.1.
 *
 *   const kms = new FakeAwsKms();           // region us-east-1, account 111122223333
 *   const url = await kms.listen();         // http://127.0.0.1:PORT
 *   const key = kms.createKey();            // key.arn, key.keyId
 *   kms.faults.push({ type: 'ThrottlingException' }, { op: 'Decrypt', hang: true });
 *   kms.log                                  // every request: op, status, fault, access key, region, ...
 *   await kms.close();
 *
 * Operations: Encrypt, Decrypt, GenerateDataKey, DescribeKey, ListKeyRotations, RotateKeyOnDemand,
 * GetKeyRotationStatus, EnableKeyRotation, CreateKey, CreateAlias, UpdateAlias, DeleteAlias,
 * ListAliases, EnableKey, DisableKey, ScheduleKeyDeletion, CancelKeyDeletion. State changes are
 * also available programmatically (setKeyState, rotate, setAlias).
 *
 * Fault injection: `faults` is a FIFO; each request takes the first fault whose `op` matches (or
 * that has no `op`). `faultRule` is consulted after the queue, for persistent faults.
 *
 * Auth: requests must carry a SigV4 Authorization header whose credential scope names this fake's
 * region and the kms service. With `credentials` registered (addCredentials), the access key must be
 * known, the signature must verify with its secret, and its session token must match.
 *
 * Nothing secret is kept in the request log: no plaintexts, ciphertexts or signatures.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { KeyStore, KmsError, type FakeKey, type FakeKeyState } from './keys.js';
import { parseAuthorization, verifySignature } from './sigv4.js';

export interface AwsFault {
  /** Only for this operation (e.g. "Decrypt"); any operation when absent. */
  op?: string;
  /** AWS error name sent as __type, e.g. "ThrottlingException". Default by status. */
  type?: string;
  /** HTTP status; default 400 for named client errors, 500 for KMSInternalException, 503 for ServiceUnavailable. */
  status?: number;
  message?: string;
  /** Sent as the error answer's Retry-After header (seconds or an HTTP-date). */
  retryAfter?: string;
  /** Accept the request and never answer (until the client gives up or the fake closes). */
  hang?: boolean;
  /** Answer normally, but only after this many ms. */
  delayMs?: number;
  /** Destroy the connection without an answer. */
  reset?: boolean;
  /** Answer normally, but with one byte of the answer's Plaintext flipped (a corrupted response). */
  corruptPlaintext?: boolean;
}

export interface LoggedRequest {
  op: string;
  at: number;
  status?: number;
  /** The __type of an error answer. */
  error?: string;
  /** The injected fault, if one was used. */
  fault?: string;
  accessKeyId?: string;
  region?: string;
  hasSecurityToken: boolean;
  userAgent?: string;
  keyId?: string;
  encryptionContext?: Record<string, string>;
  /** The client went away before an answer was sent. */
  aborted: boolean;
  /** No answer has been sent yet and the connection is still open. */
  pending: boolean;
}

export interface FakeAwsKmsOptions {
  region?: string;
  accountId?: string;
  /** Clock for creation and rotation dates (ms since epoch). */
  now?: () => number;
  /** DescribeKey leaves out CurrentKeyMaterialId (like older KMS endpoints). */
  omitCurrentKeyMaterialId?: boolean;
}

export interface Json {
  [k: string]: unknown;
}

const OPS = [
  'Encrypt',
  'Decrypt',
  'GenerateDataKey',
  'DescribeKey',
  'ListKeyRotations',
  'RotateKeyOnDemand',
  'GetKeyRotationStatus',
  'EnableKeyRotation',
  'CreateKey',
  'CreateAlias',
  'UpdateAlias',
  'DeleteAlias',
  'ListAliases',
  'EnableKey',
  'DisableKey',
  'ScheduleKeyDeletion',
  'CancelKeyDeletion',
] as const;

export class FakeAwsKms {
  readonly region: string;
  readonly accountId: string;
  readonly store: KeyStore;
  readonly faults: AwsFault[] = [];
  faultRule: ((op: string, body: Json) => AwsFault | undefined) | undefined;
  readonly log: LoggedRequest[] = [];
  /** Largest page ListKeyRotations returns, whatever Limit asks for (to exercise paging). */
  maxPageSize = 1000;
  /** Added to every answer (ms), e.g. to model a remote region in benchmarks. */
  latencyMs = 0;
  /**
   * When true, DescribeKey leaves out KeyMetadata.CurrentKeyMaterialId (like older KMS endpoints),
   * so clients must fall back to ListKeyRotations. Otherwise it names the newest material, a new id
   * on every rotation.
   */
  omitCurrentKeyMaterialId: boolean;
  /** access key id → secret and session token; when non-empty, signatures are verified. */
  readonly credentials = new Map<string, { secretAccessKey: string; sessionToken?: string }>();
  private server: http.Server | undefined;
  private hung = new Set<http.ServerResponse>();
  private readonly now: () => number;
  url = '';

  constructor(options: FakeAwsKmsOptions = {}) {
    this.region = options.region ?? 'us-east-1';
    this.accountId = options.accountId ?? '111122223333';
    this.now = options.now ?? Date.now;
    this.omitCurrentKeyMaterialId = options.omitCurrentKeyMaterialId ?? false;
    this.store = new KeyStore(this.region, this.accountId, this.now);
  }

  /** Listens on http, or on https with `tls` (a server certificate and key, PEM). */
  async listen(port = 0, host = '127.0.0.1', tls?: { cert: Buffer; key: Buffer }): Promise<string> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => this.handle(req, res);
    const server: http.Server = tls ? https.createServer(tls, handler) : http.createServer(handler);
    server.keepAliveTimeout = 5000;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const addr = server.address() as AddressInfo;
    this.url = `${tls ? 'https' : 'http'}://${host}:${addr.port}`;
    return this.url;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const res of this.hung) res.destroy();
    this.hung.clear();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  // ---- programmatic control -------------------------------------------------------------

  createKey(opts: Parameters<KeyStore['create']>[0] = {}): FakeKey {
    return this.store.create(opts);
  }

  key(id: string): FakeKey {
    return this.store.resolve(id);
  }

  /** Creates or repoints an alias ("alias/NAME"). */
  setAlias(name: string, target: string): void {
    this.store.setAlias(name, target, undefined);
  }

  rotate(id: string, type: 'AUTOMATIC' | 'ON_DEMAND' = 'ON_DEMAND'): void {
    this.store.rotate(this.key(id), type);
  }

  setKeyState(id: string, state: FakeKeyState, opts: { deletionDate?: Date } = {}): void {
    const key = this.key(id);
    key.state = state;
    key.deletionDate =
      state === 'PendingDeletion'
        ? (opts.deletionDate ?? new Date(this.now() + 7 * 86_400_000)).getTime()
        : undefined;
  }

  addCredentials(accessKeyId: string, secretAccessKey: string, sessionToken?: string): void {
    this.credentials.set(accessKeyId, { secretAccessKey, sessionToken });
  }

  /** Requests per operation (optionally only those that got this status). */
  count(op: string, status?: number): number {
    return this.log.filter((r) => r.op === op && (status === undefined || r.status === status)).length;
  }

  /** Forgets the request log and any queued faults (keys, aliases and credentials stay). */
  reset(): void {
    this.log.length = 0;
    this.faults.length = 0;
    this.faultRule = undefined;
  }

  /** Requests still waiting for an answer on an open connection (e.g. hung and not abandoned). */
  pendingRequests(): number {
    return this.log.filter((r) => r.pending).length;
  }

  // ---- HTTP ------------------------------------------------------------------------------

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const target = String(req.headers['x-amz-target'] ?? '');
      const op = target.replace(/^TrentService\./, '');
      const auth = parseAuthorization(req.headers.authorization);
      const entry: LoggedRequest = {
        op,
        at: Date.now(),
        accessKeyId: auth?.accessKeyId,
        region: auth?.region,
        hasSecurityToken: typeof req.headers['x-amz-security-token'] === 'string',
        userAgent: typeof req.headers['user-agent'] === 'string' ? req.headers['user-agent'] : undefined,
        aborted: false,
        pending: true,
      };
      this.log.push(entry);
      res.on('close', () => {
        if (entry.pending) {
          entry.pending = false;
          entry.aborted = !res.writableFinished;
        }
        this.hung.delete(res);
      });
      const send = (status: number, obj: unknown, headers: Record<string, string> = {}): void => {
        entry.status = status;
        entry.pending = false;
        const bodyText = JSON.stringify(obj);
        res.writeHead(status, {
          'content-type': 'application/x-amz-json-1.1',
          'x-amzn-requestid': randomUUID(),
          'content-length': Buffer.byteLength(bodyText),
          ...headers,
        });
        res.end(bodyText);
      };
      const fail = (e: KmsError, headers?: Record<string, string>): void => {
        entry.error = e.type;
        send(e.status, { __type: e.type, message: e.message }, headers);
      };

      let body: Json;
      try {
        body = raw.length ? (JSON.parse(raw.toString('utf8')) as Json) : {};
      } catch {
        return fail(new KmsError('SerializationException', 'body is not JSON'));
      }
      if (typeof body.KeyId === 'string') entry.keyId = body.KeyId;
      if (body.EncryptionContext && typeof body.EncryptionContext === 'object') {
        entry.encryptionContext = { ...(body.EncryptionContext as Record<string, string>) };
      }

      const fault = this.takeFault(op, body);
      if (fault) {
        entry.fault = fault.corruptPlaintext
          ? 'corrupt plaintext'
          : fault.hang
            ? 'hang'
            : fault.reset
              ? 'reset'
              : fault.delayMs !== undefined
                ? `delay ${fault.delayMs}`
                : (fault.type ?? String(fault.status));
        if (fault.hang) {
          this.hung.add(res);
          return;
        }
        if (fault.reset) {
          entry.pending = false;
          req.socket.destroy();
          return;
        }
        if (fault.delayMs === undefined && !fault.corruptPlaintext) {
          const status =
            fault.status ?? (fault.type === 'KMSInternalException' ? 500 : fault.type ? 400 : 500);
          const type =
            fault.type ??
            (status === 503
              ? 'ServiceUnavailableException'
              : status >= 500
                ? 'KMSInternalException'
                : 'ValidationException');
          return fail(
            new KmsError(type, fault.message ?? type, status),
            fault.retryAfter === undefined ? undefined : { 'retry-after': fault.retryAfter },
          );
        }
      }
      const answer = (): void => {
        if (res.destroyed) return;
        const authError = this.checkAuth(req, raw, auth);
        if (authError) return fail(authError);
        if (req.method !== 'POST' || !(OPS as readonly string[]).includes(op)) {
          return fail(new KmsError('UnknownOperationException', `unknown operation ${target}`));
        }
        try {
          const result = this.dispatch(op, body);
          if (fault?.corruptPlaintext && typeof result.Plaintext === 'string') {
            const plain = Buffer.from(result.Plaintext, 'base64');
            plain[0] ^= 0x20;
            result.Plaintext = plain.toString('base64');
          }
          send(200, result);
        } catch (e) {
          if (e instanceof KmsError) return fail(e);
          return fail(new KmsError('KMSInternalException', 'internal error', 500));
        }
      };
      const delay = (fault?.delayMs ?? 0) + this.latencyMs;
      if (delay > 0) setTimeout(answer, delay);
      else answer();
    });
  }

  private takeFault(op: string, body: Json): AwsFault | undefined {
    const i = this.faults.findIndex((f) => f.op === undefined || f.op === op);
    if (i >= 0) return this.faults.splice(i, 1)[0];
    return this.faultRule?.(op, body);
  }

  private checkAuth(
    req: http.IncomingMessage,
    raw: Buffer,
    auth: ReturnType<typeof parseAuthorization>,
  ): KmsError | undefined {
    if (!auth)
      return new KmsError(
        'MissingAuthenticationTokenException',
        'Missing or malformed SigV4 Authorization header',
      );
    if (auth.service !== 'kms' || auth.region !== this.region) {
      return new KmsError(
        'InvalidSignatureException',
        `Credential should be scoped to a valid region and service kms; expected ${this.region}`,
      );
    }
    if (this.credentials.size === 0) return undefined;
    const known = this.credentials.get(auth.accessKeyId);
    if (!known)
      return new KmsError(
        'UnrecognizedClientException',
        'The security token included in the request is invalid.',
      );
    const token = req.headers['x-amz-security-token'];
    if ((known.sessionToken ?? undefined) !== (typeof token === 'string' ? token : undefined)) {
      return new KmsError(
        'UnrecognizedClientException',
        'The security token included in the request is invalid.',
      );
    }
    if (
      !verifySignature(auth, req.method ?? 'POST', req.url ?? '/', req.headers, raw, known.secretAccessKey)
    ) {
      return new KmsError(
        'InvalidSignatureException',
        'The request signature we calculated does not match the signature you provided.',
      );
    }
    return undefined;
  }

  // ---- operations ------------------------------------------------------------------------

  private dispatch(op: string, b: Json): Json {
    const s = this.store;
    switch (op) {
      case 'Encrypt': {
        const key = s.resolve(b.KeyId);
        s.checkUsable(key);
        const plaintext = blob(b.Plaintext, 'Plaintext');
        if (plaintext.length < 1 || plaintext.length > 4096)
          throw new KmsError('ValidationException', 'Plaintext must be 1-4096 bytes');
        return {
          CiphertextBlob: s.seal(key, plaintext, ctxOf(b)).toString('base64'),
          KeyId: key.arn,
          EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        };
      }
      case 'GenerateDataKey': {
        const key = s.resolve(b.KeyId);
        s.checkUsable(key);
        const n = b.KeySpec === 'AES_128' ? 16 : typeof b.NumberOfBytes === 'number' ? b.NumberOfBytes : 32;
        const plaintext = Buffer.alloc(n);
        for (let i = 0; i < n; i++) plaintext[i] = Math.floor(Math.random() * 256);
        return {
          CiphertextBlob: s.seal(key, plaintext, ctxOf(b)).toString('base64'),
          Plaintext: plaintext.toString('base64'),
          KeyId: key.arn,
        };
      }
      case 'Decrypt': {
        const ct = blob(b.CiphertextBlob, 'CiphertextBlob');
        const key = s.keyOf(ct);
        if (b.KeyId !== undefined && s.resolve(b.KeyId).keyId !== key.keyId) {
          throw new KmsError(
            'IncorrectKeyException',
            'The key ID in the request does not identify a KMS key that can perform this operation.',
          );
        }
        s.checkUsable(key);
        return {
          Plaintext: s.open(key, ct, ctxOf(b)).toString('base64'),
          KeyId: key.arn,
          EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        };
      }
      case 'DescribeKey':
        return { KeyMetadata: this.metadata(s.resolve(b.KeyId)) };
      case 'ListKeyRotations': {
        const key = s.resolve(b.KeyId);
        if (key.state === 'PendingDeletion')
          throw new KmsError('KMSInvalidStateException', `${key.arn} is pending deletion.`);
        const all = key.materials.slice(1).map((m) => ({
          KeyId: key.arn,
          KeyMaterialId: m.id,
          RotationDate: m.at / 1000,
          RotationType: m.rotationType ?? 'ON_DEMAND',
        }));
        const start = typeof b.Marker === 'string' ? Number(b.Marker) : 0;
        const limit = Math.min(typeof b.Limit === 'number' ? b.Limit : 100, this.maxPageSize);
        const page = all.slice(start, start + limit);
        const more = start + limit < all.length;
        return { Rotations: page, Truncated: more, ...(more ? { NextMarker: String(start + limit) } : {}) };
      }
      case 'RotateKeyOnDemand': {
        const key = s.resolve(b.KeyId);
        s.checkUsable(key);
        s.rotate(key, 'ON_DEMAND');
        return { KeyId: key.arn };
      }
      case 'GetKeyRotationStatus': {
        const key = s.resolve(b.KeyId);
        return { KeyId: key.arn, KeyRotationEnabled: key.rotationEnabled, RotationPeriodInDays: 365 };
      }
      case 'EnableKeyRotation': {
        s.resolve(b.KeyId).rotationEnabled = true;
        return {};
      }
      case 'CreateKey': {
        const key = s.create({
          description: typeof b.Description === 'string' ? b.Description : undefined,
          keySpec: typeof b.KeySpec === 'string' ? b.KeySpec : undefined,
          keyUsage: typeof b.KeyUsage === 'string' ? b.KeyUsage : undefined,
        });
        return { KeyMetadata: this.metadata(key) };
      }
      case 'CreateAlias':
      case 'UpdateAlias':
        s.setAlias(String(b.AliasName), String(b.TargetKeyId), op === 'UpdateAlias');
        return {};
      case 'DeleteAlias':
        if (!s.aliases.delete(String(b.AliasName)))
          throw new KmsError('NotFoundException', `Alias ${String(b.AliasName)} does not exist`);
        return {};
      case 'ListAliases':
        return {
          Aliases: [...s.aliases].map(([name, keyId]) => ({
            AliasName: name,
            AliasArn: s.aliasArn(name),
            TargetKeyId: keyId,
          })),
          Truncated: false,
        };
      case 'EnableKey':
      case 'DisableKey': {
        const key = s.resolve(b.KeyId);
        if (key.state === 'PendingDeletion')
          throw new KmsError('KMSInvalidStateException', `${key.arn} is pending deletion.`);
        key.state = op === 'EnableKey' ? 'Enabled' : 'Disabled';
        return {};
      }
      case 'ScheduleKeyDeletion': {
        const key = s.resolve(b.KeyId);
        const days = typeof b.PendingWindowInDays === 'number' ? b.PendingWindowInDays : 30;
        this.setKeyState(key.keyId, 'PendingDeletion', {
          deletionDate: new Date(this.now() + days * 86_400_000),
        });
        return {
          KeyId: key.arn,
          DeletionDate: (key.deletionDate ?? 0) / 1000,
          KeyState: 'PendingDeletion',
          PendingWindowInDays: days,
        };
      }
      case 'CancelKeyDeletion': {
        const key = s.resolve(b.KeyId);
        if (key.state !== 'PendingDeletion')
          throw new KmsError('KMSInvalidStateException', `${key.arn} is not pending deletion.`);
        this.setKeyState(key.keyId, 'Disabled');
        return { KeyId: key.arn };
      }
      default:
        throw new KmsError('UnknownOperationException', `unknown operation ${op}`);
    }
  }

  private metadata(key: FakeKey): Json {
    return {
      AWSAccountId: this.accountId,
      KeyId: key.keyId,
      Arn: key.arn,
      CreationDate: key.creationDate / 1000,
      Enabled: key.state === 'Enabled',
      Description: key.description,
      KeyUsage: key.keyUsage,
      KeyState: key.state,
      ...(key.deletionDate !== undefined
        ? { DeletionDate: key.deletionDate / 1000, PendingDeletionWindowInDays: 7 }
        : {}),
      Origin: 'AWS_KMS',
      KeyManager: key.keyManager,
      CustomerMasterKeySpec: key.keySpec,
      KeySpec: key.keySpec,
      EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'],
      MultiRegion: false,
      ...(this.omitCurrentKeyMaterialId
        ? {}
        : { CurrentKeyMaterialId: key.materials[key.materials.length - 1].id }),
    };
  }
}

function blob(v: unknown, field: string): Buffer {
  if (typeof v !== 'string' || v === '') throw new KmsError('ValidationException', `${field} is required`);
  return Buffer.from(v, 'base64');
}

function ctxOf(b: Json): Record<string, string> | undefined {
  const c = b.EncryptionContext;
  return c && typeof c === 'object' ? (c as Record<string, string>) : undefined;
}
