/**
 * The gRPC server: KMS v2 handlers on a Unix socket, with graceful drain.
 *
 * Handlers validate, call the envelope (Encrypt/Decrypt) or the status source (Status), map
 * errors in one place, honour the caller's deadline, and log one line per RPC. The server never
 * looks at `:authority` (kube-apiserver sends a path, a percent-encoded path or "localhost").
 *
 * Abstract sockets (`unix:///@name`) are not bound by grpc-js: Node would pad the name to 108
 * bytes, which Go never dials. The native helper binds the exact-length name instead, and each
 * accepted connection is injected into the same grpc-js server (see ./abstract-socket.ts).
 */
import {
  Server,
  ServerCredentials,
  status as grpcStatus,
  type ServerUnaryCall,
  type UntypedServiceImplementation,
  type sendUnaryData,
} from '@grpc/grpc-js';
import { lstatSync } from 'node:fs';
import type { Server as NetServer, Socket } from 'node:net';
import { CallDeadline } from '../deadline.js';
import {
  CancelledError,
  PluginError as PluginErrorClass,
  UnavailableError,
  type PluginError,
} from '../errors.js';
import { accessLogger, type Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { listenAbstract } from './abstract-socket.js';
import { codeName, mapError, toServiceError } from './errors.js';
import {
  METHODS,
  kmsServiceDefinition,
  type DecryptRequest,
  type DecryptResponse,
  type EncryptRequest,
  type EncryptResponse,
  type StatusResponse,
} from './proto.js';
import {
  applySocketPermissions,
  parseEndpoint,
  prepareSocketPath,
  removeSocket,
  type Endpoint,
} from './socket.js';
import { safeUid, validateDecrypt, validateEncrypt } from './validate.js';

/** What Status answers, from memory. */
export type StatusAnswer =
  { ok: true; version: string; healthz: string; keyId: string } | { ok: false; error: PluginError };

export interface StatusSource {
  status(): StatusAnswer;
}

/** The envelope operations the server needs (implemented by src/envelope/Envelope). */
export interface EnvelopeOps {
  encrypt(plaintext: Uint8Array): { ciphertext: Buffer; keyId: string; annotations: Record<string, Buffer> };
  decrypt(
    ciphertext: Uint8Array,
    keyId: string,
    annotations: Record<string, Uint8Array>,
    signal: AbortSignal | (() => AbortSignal),
  ): Promise<Buffer>;
}

export interface KmsServerOptions {
  listen: string;
  socketMode: number;
  socketGroup?: string | number;
  maxPlaintextBytes: number;
  status: StatusSource;
  envelope: EnvelopeOps;
  logger: Logger;
  metrics?: Metrics;
  /** Deadline used when a caller sends none (kube-apiserver always sends one). */
  defaultDeadlineMs?: number;
}

/** Shared reason for calls the client cancelled (allocated once, not per call). */
const CALLER_CANCELLED = new CancelledError('the caller cancelled the call');

/** Largest request we read: 1 KiB ciphertext + 32 KiB annotations + key_id + framing, with room. */
const MAX_RECEIVE_BYTES = 128 * 1024;

export class KmsServer {
  readonly endpoint: Endpoint;
  private readonly server: Server;
  private socketIno: number | undefined;
  /** The exact-length abstract listener and its live connections (abstract endpoints only). */
  private abstractListener: NetServer | undefined;
  private readonly abstractConnections = new Set<Socket>();
  private started = false;
  private stopping = false;
  private inFlight = 0;

  constructor(private readonly options: KmsServerOptions) {
    this.endpoint = parseEndpoint(options.listen);
    this.accessLog = accessLogger(options.logger);
    this.server = new Server({
      'grpc.max_receive_message_length': MAX_RECEIVE_BYTES,
      // Do NOT set 'grpc.enable_channelz': 0 to save CPU: grpc-js 1.14 then stops tracking
      // sessions, and forceShutdown() can no longer cut calls at the drain deadline.
      'grpc.max_send_message_length': MAX_RECEIVE_BYTES,
    });
    this.server.addService(kmsServiceDefinition(), this.handlers());
  }

  get inFlightCalls(): number {
    return this.inFlight;
  }

  /** Binds the socket (first thing at start-up, before any remote call). */
  async start(): Promise<void> {
    const ep = this.endpoint;
    if (ep.kind === 'abstract') {
      await this.listenAbstract(ep.name, ep.display);
      this.started = true;
      this.options.logger.info({ listen: ep.display, socket: 'abstract' }, 'listening');
      return;
    }
    const prepared = await prepareSocketPath(ep.path);
    // Bind with a tight umask so the socket is never briefly world-accessible, then set the mode.
    const oldUmask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        this.server.bindAsync(ep.bindTarget, ServerCredentials.createInsecure(), (err) =>
          err ? reject(err) : resolve(),
        );
      });
    } catch (err) {
      throw new UnavailableError(`cannot listen on ${ep.display}: ${(err as Error).message}`, { cause: err });
    } finally {
      process.umask(oldUmask);
    }
    applySocketPermissions(ep.path, this.options.socketMode, this.options.socketGroup);
    this.socketIno = lstatSync(ep.path).ino;
    this.started = true;
    this.options.logger.info(
      { listen: ep.display, socket: prepared, mode: this.options.socketMode.toString(8) },
      'listening',
    );
  }

  /** Binds the exact-length abstract name and feeds every connection to the grpc-js server. */
  private async listenAbstract(name: string, display: string): Promise<void> {
    const injector = this.server.createConnectionInjector(ServerCredentials.createInsecure());
    const onConnection = (socket: Socket): void => {
      if (this.stopping) {
        socket.destroy();
        return;
      }
      this.abstractConnections.add(socket);
      socket.once('close', () => this.abstractConnections.delete(socket));
      injector.injectConnection(socket);
    };
    try {
      this.abstractListener = await listenAbstract(name, onConnection);
    } catch (err) {
      const inUse = (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
      const why = inUse ? 'another process is serving on it: stop it first' : (err as Error).message;
      throw new UnavailableError(`cannot listen on ${display}: ${why}`, { cause: err });
    }
    this.abstractListener.on('error', (err) =>
      this.options.logger.error({ err: err.message }, 'abstract socket listener error'),
    );
  }

  /**
   * Stops accepting, waits up to `timeoutMs` for in-flight calls, then cancels the rest and
   * removes the socket file.
   */
  async stop(timeoutMs: number): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    // Stop accepting first (this also frees the abstract name); grpc-js then drains the sessions.
    this.abstractListener?.close();
    const drained = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    if (!drained) {
      this.options.logger.warn(
        { inFlight: this.inFlight, timeoutMs },
        'drain deadline passed; cancelling remaining calls',
      );
      this.server.forceShutdown();
    }
    // Injected sessions are drained or destroyed by grpc-js above; drop any socket left behind.
    for (const socket of this.abstractConnections) socket.destroy();
    this.abstractConnections.clear();
    if (this.started && this.endpoint.kind === 'path') removeSocket(this.endpoint.path, this.socketIno);
    this.options.logger.info({ drained }, 'gRPC server stopped');
  }

  private handlers(): UntypedServiceImplementation {
    return {
      Status: (call: ServerUnaryCall<unknown, StatusResponse>, cb: sendUnaryData<StatusResponse>) =>
        this.unary('status', call, cb, undefined, async () => {
          const answer = this.options.status.status();
          if (!answer.ok) throw answer.error;
          return {
            response: { version: answer.version, healthz: answer.healthz, key_id: answer.keyId },
            keyId: answer.keyId,
          };
        }),
      Encrypt: (call: ServerUnaryCall<EncryptRequest, EncryptResponse>, cb: sendUnaryData<EncryptResponse>) =>
        this.unary('encrypt', call, cb, call.request.uid, async () => {
          validateEncrypt(call.request, this.options.maxPlaintextBytes);
          const r = this.options.envelope.encrypt(call.request.plaintext);
          return {
            response: { ciphertext: r.ciphertext, key_id: r.keyId, annotations: r.annotations },
            keyId: r.keyId,
          };
        }),
      Decrypt: (call: ServerUnaryCall<DecryptRequest, DecryptResponse>, cb: sendUnaryData<DecryptResponse>) =>
        this.unary('decrypt', call, cb, call.request.uid, async (deadline) => {
          const req = call.request;
          validateDecrypt(req);
          const plaintext = await this.options.envelope.decrypt(
            req.ciphertext,
            req.key_id,
            req.annotations ?? {},
            () => deadline.signal,
          );
          return { response: { plaintext }, keyId: req.key_id };
        }),
    };
  }

  private readonly accessLog: Logger;
  private readonly rpcCounters = new Map<string, { inc(): void }>();
  private readonly rpcTimers = new Map<string, { observe(v: number): void }>();

  /** Metric children are looked up once per (method, code), not hashed on every call. */
  private recordRpc(method: string, code: grpcStatus, seconds: number): void {
    const metrics = this.options.metrics;
    if (!metrics) return;
    const key = `${method}:${code}`;
    let counter = this.rpcCounters.get(key);
    if (!counter) {
      counter = metrics.rpcTotal.labels({ method, code: codeName(code) });
      this.rpcCounters.set(key, counter);
    }
    counter.inc();
    let timer = this.rpcTimers.get(method);
    if (!timer) {
      timer = metrics.rpcDuration.labels({ method });
      this.rpcTimers.set(method, timer);
    }
    timer.observe(seconds);
  }

  /** Runs one RPC: deadline → work → error mapping → metrics → one log line. */
  private unary<Req, Res>(
    method: keyof typeof METHODS,
    call: ServerUnaryCall<Req, Res>,
    cb: sendUnaryData<Res>,
    uid: string | undefined,
    work: (deadline: CallDeadline) => Promise<{ response: Res; keyId?: string }>,
  ): void {
    const started = process.hrtime.bigint();
    this.inFlight += 1;
    const deadlineMs = deadlineOfCall(call.getDeadline(), this.options.defaultDeadlineMs ?? 30_000);
    const deadline = new CallDeadline(deadlineMs, reserveFor(deadlineMs));
    call.on('cancelled', () => deadline.cancel(CALLER_CANCELLED));

    const finish = (code: grpcStatus, keyId: string | undefined, kind?: string, details?: string): void => {
      this.inFlight -= 1;
      deadline.dispose();
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      this.recordRpc(method, code, seconds);
      const logger = this.accessLog;
      const level =
        code === grpcStatus.OK
          ? method === 'status'
            ? 'debug'
            : 'info'
          : code === grpcStatus.INTERNAL
            ? 'error'
            : 'warn';
      if (!logger.isLevelEnabled(level)) return;
      logger[level](
        {
          method,
          uid: safeUid(uid),
          keyId,
          outcome: code === grpcStatus.OK ? 'ok' : kind,
          code: codeName(code),
          durationMs: Math.round(seconds * 1e6) / 1e3,
          ...(details ? { error: details } : {}),
        },
        'rpc',
      );
    };

    work(deadline).then(
      ({ response, keyId }) => {
        if (method !== 'status' && deadline.expired) {
          // The caller has given up; do not pretend success arrived in time.
          finish(grpcStatus.DEADLINE_EXCEEDED, keyId, 'deadline', 'deadline passed before the reply');
          cb(
            toServiceError({
              code: grpcStatus.DEADLINE_EXCEEDED,
              kind: 'deadline',
              details: 'deadline exceeded',
            }),
          );
          return;
        }
        finish(grpcStatus.OK, keyId);
        cb(null, response);
      },
      (err: unknown) => {
        const m = mapError(deadline.expired && !(err instanceof PluginErrorClass) ? deadline.reason : err);
        const keyId = (call.request as { key_id?: string } | undefined)?.key_id;
        finish(m.code, keyId ? keyId.slice(0, 128) : undefined, m.kind, m.details);
        cb(toServiceError(m));
      },
    );
  }
}

/**
 * Remote work stops this much before the caller's deadline (a tenth of the time left, at most
 * 250 ms; 100 ms proved too little on a busy node), so a Decrypt whose KMS does not answer
 * returns our own error in time instead of leaving the apiserver to hit its own timeout.
 */
function reserveFor(deadlineMs: number): number {
  return Math.min(250, Math.max(0, (deadlineMs - Date.now()) / 10));
}

/** grpc-js reports the caller's deadline as a Date, a number, or Infinity when none was sent. */
function deadlineOfCall(deadline: Date | number, fallbackMs: number): number {
  if (deadline instanceof Date) return deadline.getTime();
  return Number.isFinite(deadline) ? Number(deadline) : Date.now() + fallbackMs;
}
