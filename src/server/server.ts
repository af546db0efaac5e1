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
import { performance } from 'node:perf_hooks';
import type { Server as NetServer, Socket } from 'node:net';
import { CallDeadline } from '../deadline.js';
import {
  CancelledError,
  DeadlineError,
  PluginError as PluginErrorClass,
  UnavailableError,
  type PluginError,
} from '../errors.js';
import { AccessLog } from '../observability/access-log.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics, RpcRecorder } from '../observability/metrics.js';
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
import { SessionWatcher, type Adoption } from './stream-table.js';
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
  /**
   * Optional synchronous path: the plaintext when the DEK is in memory, undefined when decrypt()
   * is needed; throws what decrypt() would reject with.
   */
  decryptInMemory?(
    ciphertext: Uint8Array,
    keyId: string,
    annotations: Record<string, Uint8Array>,
  ): Buffer | undefined;
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
    this.accessLog = new AccessLog(options.logger);
    const metrics = options.metrics;
    this.rpcRecorders = metrics && METHOD_NAMES.map((name) => metrics.rpcRecorder(name));
    this.server = new Server({
      'grpc.max_receive_message_length': MAX_RECEIVE_BYTES,
      // Do NOT set 'grpc.enable_channelz': 0 to save CPU: grpc-js 1.14 then stops tracking
      // sessions, and forceShutdown() can no longer cut calls at the drain deadline.
      'grpc.max_send_message_length': MAX_RECEIVE_BYTES,
    });
    this.server.addService(kmsServiceDefinition(), this.handlers());
    this.sessions = new SessionWatcher((adoption) => this.reportAdoption(adoption));
  }

  /** Sessions given a StreamTable, and why the others were not (see ./stream-table.ts). */
  get streamTables(): { adopted: number; refused: ReadonlyMap<string, number> } {
    return { adopted: this.tablesAdopted, refused: this.tablesRefused };
  }

  /** Counts each session's outcome; logs the first success and the first of each failure. */
  private reportAdoption(adoption: Adoption): void {
    if (adoption.adopted) {
      if (++this.tablesAdopted === 1)
        this.options.logger.debug({ streamTable: 'adopted' }, 'HTTP/2 stream table');
      return;
    }
    const times = (this.tablesRefused.get(adoption.reason) ?? 0) + 1;
    this.tablesRefused.set(adoption.reason, times);
    if (times === 1)
      this.options.logger.info(
        { streamTable: 'node', reason: adoption.reason },
        'HTTP/2 sessions keep their own stream table: calls work as before, with more garbage collection',
      );
  }

  get inFlightCalls(): number {
    return this.inFlight;
  }

  /** Writes the access lines still batched (they are otherwise written within 50 ms). */
  flushAccessLog(): void {
    this.accessLog.flush();
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
    this.sessions.watch(this.server); // sessions opened since the bind are adopted too
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
    this.sessions.watch(this.server);
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
    this.accessLog.flush();
    this.options.logger.info({ drained }, 'gRPC server stopped');
  }

  private handlers(): UntypedServiceImplementation {
    return {
      Status: (call: ServerUnaryCall<unknown, StatusResponse>, cb: sendUnaryData<StatusResponse>) =>
        this.status(call, cb),
      Encrypt: (call: ServerUnaryCall<EncryptRequest, EncryptResponse>, cb: sendUnaryData<EncryptResponse>) =>
        this.encrypt(call, cb),
      Decrypt: (call: ServerUnaryCall<DecryptRequest, DecryptResponse>, cb: sendUnaryData<DecryptResponse>) =>
        this.decrypt(call, cb),
    };
  }

  private readonly accessLog: AccessLog;
  /** Swaps each HTTP/2 session's stream Map for a StreamTable (./stream-table.ts). */
  private readonly sessions: SessionWatcher;
  private tablesAdopted = 0;
  private readonly tablesRefused = new Map<string, number>();
  /** Per-method recorders: plain counting on the hot path, folded into prom-client when scraped. */
  private readonly rpcRecorders: ReadonlyArray<RpcRecorder> | undefined;

  /*
   * The three handlers run synchronously up to the envelope; only a Decrypt whose DEK is not in
   * memory awaits anything. Per call they allocate no closures, timers or AbortSignals: the
   * caller's deadline is read from the call, and a CallDeadline (signal, timer, cancel listener)
   * is made only when a remote unwrap asks for a signal.
   */

  private status(call: ServerUnaryCall<unknown, StatusResponse>, cb: sendUnaryData<StatusResponse>): void {
    const started = performance.now();
    this.inFlight += 1;
    let answer: StatusAnswer;
    try {
      answer = this.options.status.status();
    } catch (err) {
      this.fail(M_STATUS, started, call, cb, err, undefined);
      return;
    }
    if (!answer.ok) {
      this.fail(M_STATUS, started, call, cb, answer.error, undefined);
      return;
    }
    this.finish(M_STATUS, started, grpcStatus.OK, undefined, answer.keyId, undefined);
    cb(null, { version: answer.version, healthz: answer.healthz, key_id: answer.keyId });
  }

  private encrypt(
    call: ServerUnaryCall<EncryptRequest, EncryptResponse>,
    cb: sendUnaryData<EncryptResponse>,
  ): void {
    const started = performance.now();
    this.inFlight += 1;
    const req = call.request;
    let r: ReturnType<EnvelopeOps['encrypt']>;
    try {
      validateEncrypt(req, this.options.maxPlaintextBytes);
      r = this.options.envelope.encrypt(req.plaintext);
    } catch (err) {
      this.fail(M_ENCRYPT, started, call, cb, err, undefined);
      return;
    }
    this.reply(
      M_ENCRYPT,
      started,
      call,
      cb,
      { ciphertext: r.ciphertext, key_id: r.keyId, annotations: r.annotations },
      r.keyId,
      undefined,
    );
  }

  private decrypt(
    call: ServerUnaryCall<DecryptRequest, DecryptResponse>,
    cb: sendUnaryData<DecryptResponse>,
  ): void {
    const started = performance.now();
    this.inFlight += 1;
    const req = call.request;
    const envelope = this.options.envelope;
    if (envelope.decryptInMemory) {
      // The DEK in memory (the usual case): answered synchronously, no promise or closure.
      let plaintext: Buffer | undefined;
      try {
        validateDecrypt(req);
        plaintext = envelope.decryptInMemory(req.ciphertext, req.key_id, req.annotations ?? {});
      } catch (err) {
        this.fail(M_DECRYPT, started, call, cb, err, undefined);
        return;
      }
      if (plaintext) {
        this.reply(M_DECRYPT, started, call, cb, { plaintext }, req.key_id, undefined);
        return;
      }
    }
    // Made only if the envelope needs a signal (a remote unwrap).
    let deadline: CallDeadline | undefined;
    const signal = (): AbortSignal => {
      deadline ??= this.callDeadline(call);
      return deadline.signal;
    };
    let pending: Promise<Buffer>;
    try {
      if (!envelope.decryptInMemory) validateDecrypt(req);
      pending = envelope.decrypt(req.ciphertext, req.key_id, req.annotations ?? {}, signal);
    } catch (err) {
      this.fail(M_DECRYPT, started, call, cb, err, undefined);
      return;
    }
    pending.then(
      (plaintext) => this.reply(M_DECRYPT, started, call, cb, { plaintext }, req.key_id, deadline),
      (err: unknown) => this.fail(M_DECRYPT, started, call, cb, err, deadline),
    );
  }

  /** The deadline and cancellation of a call, as a CallDeadline (for remote work). */
  private callDeadline(call: ServerUnaryCall<unknown, unknown>): CallDeadline {
    const deadlineMs = deadlineOfCall(call.getDeadline(), this.options.defaultDeadlineMs ?? 30_000);
    const deadline = new CallDeadline(deadlineMs, reserveFor(deadlineMs));
    if (call.cancelled) deadline.cancel(CALLER_CANCELLED);
    else call.once('cancelled', () => deadline.cancel(CALLER_CANCELLED));
    return deadline;
  }

  /** Sends a successful answer, unless the caller has given up meanwhile. */
  private reply<Res>(
    method: number,
    started: number,
    call: ServerUnaryCall<unknown, Res>,
    cb: sendUnaryData<Res>,
    response: Res,
    keyId: string,
    deadline: CallDeadline | undefined,
  ): void {
    if (deadline ? deadline.expired : this.expired(call)) {
      // The caller has given up; do not pretend success arrived in time.
      deadline?.dispose();
      this.finish(
        method,
        started,
        grpcStatus.DEADLINE_EXCEEDED,
        'deadline',
        keyId,
        (call.request as { uid?: string }).uid,
        'deadline passed before the reply',
      );
      cb(
        toServiceError({
          code: grpcStatus.DEADLINE_EXCEEDED,
          kind: 'deadline',
          details: 'deadline exceeded',
        }),
      );
      return;
    }
    deadline?.dispose();
    this.finish(method, started, grpcStatus.OK, undefined, keyId, (call.request as { uid?: string }).uid);
    cb(null, response);
  }

  /** Maps an error (in one place: ./errors.ts) and sends it. */
  private fail<Res>(
    method: number,
    started: number,
    call: ServerUnaryCall<unknown, Res>,
    cb: sendUnaryData<Res>,
    err: unknown,
    deadline: CallDeadline | undefined,
  ): void {
    let cause = err;
    if (!(err instanceof PluginErrorClass)) {
      if (deadline?.expired) cause = deadline.reason;
      else if (!deadline && this.expired(call)) cause = call.cancelled ? CALLER_CANCELLED : DEADLINE_PASSED;
    }
    deadline?.dispose();
    const m = mapError(cause);
    const req = call.request as { key_id?: string; uid?: string } | undefined;
    const keyId = req?.key_id ? req.key_id.slice(0, 128) : undefined;
    this.finish(
      method,
      started,
      m.code,
      m.kind,
      keyId,
      method === M_STATUS ? undefined : req?.uid,
      m.details,
    );
    cb(toServiceError(m));
  }

  /** True once the caller's deadline has passed or it cancelled. */
  private expired(call: ServerUnaryCall<unknown, unknown>): boolean {
    if (call.cancelled) return true;
    const d = call.getDeadline();
    const ms = d instanceof Date ? d.getTime() : Number(d);
    return Number.isFinite(ms) && Date.now() >= ms;
  }

  /** Metrics and the access line of one RPC. */
  private finish(
    method: number,
    started: number,
    code: grpcStatus,
    kind: string | undefined,
    keyId: string | undefined,
    uid: string | undefined,
    details?: string,
  ): void {
    this.inFlight -= 1;
    const seconds = (performance.now() - started) / 1000;
    const name = METHOD_NAMES[method];
    this.rpcRecorders?.[method].record(code === grpcStatus.OK ? 'OK' : codeName(code), seconds);
    const level =
      code === grpcStatus.OK
        ? method === M_STATUS
          ? 'debug'
          : 'info'
        : code === grpcStatus.INTERNAL
          ? 'error'
          : 'warn';
    if (!this.accessLog.enabled(level)) return;
    this.accessLog.write(level, {
      method: name,
      uid: safeUid(uid),
      keyId,
      outcome: code === grpcStatus.OK ? 'ok' : kind,
      code: codeName(code),
      durationMs: Math.round(seconds * 1e6) / 1e3,
      error: details,
    });
  }
}

const M_STATUS = 0;
const M_ENCRYPT = 1;
const M_DECRYPT = 2;
const METHOD_NAMES: ReadonlyArray<keyof typeof METHODS> = ['status', 'encrypt', 'decrypt'];

/** Reason for a non-plugin error raised after the caller's deadline passed. */
const DEADLINE_PASSED = new DeadlineError('deadline exceeded');

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
