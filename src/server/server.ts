/**
 * The gRPC server: KMS v2 handlers on a Unix socket, with graceful drain.
 *
 * Handlers validate, call the envelope (Encrypt/Decrypt) or the status source (Status), map
 * errors in one place, honour the caller's deadline, and log one line per RPC. The server never
 * looks at `:authority` (kube-apiserver sends a path, a percent-encoded path or "localhost").
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
import { deadlineSignal } from '../deadline.js';
import { UnavailableError, type PluginError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
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
import { applySocketPermissions, parseEndpoint, prepareSocketPath, removeSocket, type Endpoint } from './socket.js';
import { safeUid, validateDecrypt, validateEncrypt } from './validate.js';

/** What Status answers, from memory. */
export type StatusAnswer = { ok: true; version: string; healthz: string; keyId: string } | { ok: false; error: PluginError };

export interface StatusSource {
  status(): StatusAnswer;
}

/** The envelope operations the server needs (implemented by src/envelope/Envelope). */
export interface EnvelopeOps {
  encrypt(plaintext: Uint8Array): { ciphertext: Buffer; keyId: string; annotations: Record<string, Buffer> };
  decrypt(ciphertext: Uint8Array, keyId: string, annotations: Record<string, Uint8Array>, signal: AbortSignal): Promise<Buffer>;
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

/** Largest request we read: 1 KiB ciphertext + 32 KiB annotations + key_id + framing, with room. */
const MAX_RECEIVE_BYTES = 128 * 1024;

export class KmsServer {
  readonly endpoint: Endpoint;
  private readonly server: Server;
  private socketIno: number | undefined;
  private started = false;
  private stopping = false;
  private inFlight = 0;

  constructor(private readonly options: KmsServerOptions) {
    this.endpoint = parseEndpoint(options.listen);
    this.server = new Server({
      'grpc.max_receive_message_length': MAX_RECEIVE_BYTES,
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
    let prepared: string = 'abstract';
    if (ep.kind === 'path') prepared = await prepareSocketPath(ep.path);
    // Bind with a tight umask so the socket is never briefly world-accessible, then set the mode.
    const oldUmask = ep.kind === 'path' ? process.umask(0o177) : undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        this.server.bindAsync(ep.bindTarget, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
      });
    } catch (err) {
      throw new UnavailableError(`cannot listen on ${ep.display}: ${(err as Error).message}`, { cause: err });
    } finally {
      if (oldUmask !== undefined) process.umask(oldUmask);
    }
    if (ep.kind === 'path') {
      applySocketPermissions(ep.path, this.options.socketMode, this.options.socketGroup);
      this.socketIno = lstatSync(ep.path).ino;
    }
    this.started = true;
    this.options.logger.info(
      { listen: ep.display, socket: prepared, mode: ep.kind === 'path' ? this.options.socketMode.toString(8) : undefined },
      'listening',
    );
  }

  /**
   * Stops accepting, waits up to `timeoutMs` for in-flight calls, then cancels the rest and
   * removes the socket file.
   */
  async stop(timeoutMs: number): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const drained = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    if (!drained) {
      this.options.logger.warn({ inFlight: this.inFlight, timeoutMs }, 'drain deadline passed; cancelling remaining calls');
      this.server.forceShutdown();
    }
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
          return { response: { ciphertext: r.ciphertext, key_id: r.keyId, annotations: r.annotations }, keyId: r.keyId };
        }),
      Decrypt: (call: ServerUnaryCall<DecryptRequest, DecryptResponse>, cb: sendUnaryData<DecryptResponse>) =>
        this.unary('decrypt', call, cb, call.request.uid, async (signal) => {
          const req = call.request;
          validateDecrypt(req);
          const plaintext = await this.options.envelope.decrypt(req.ciphertext, req.key_id, req.annotations ?? {}, signal);
          return { response: { plaintext }, keyId: req.key_id };
        }),
    };
  }

  /** Runs one RPC: deadline → work → error mapping → metrics → one log line. */
  private unary<Req, Res>(
    method: keyof typeof METHODS,
    call: ServerUnaryCall<Req, Res>,
    cb: sendUnaryData<Res>,
    uid: string | undefined,
    work: (signal: AbortSignal) => Promise<{ response: Res; keyId?: string }>,
  ): void {
    const started = process.hrtime.bigint();
    this.inFlight += 1;
    const cancel = new AbortController();
    call.on('cancelled', () => cancel.abort(new DOMException('caller cancelled', 'AbortError')));
    const deadline = call.getDeadline();
    const deadlineMs =
      deadline instanceof Date
        ? deadline.getTime()
        : Number.isFinite(deadline)
          ? Number(deadline)
          : Date.now() + (this.options.defaultDeadlineMs ?? 30_000);
    const signal = deadlineSignal(deadlineMs, cancel.signal);

    const finish = (code: grpcStatus, keyId: string | undefined, kind?: string, details?: string): void => {
      this.inFlight -= 1;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      this.options.metrics?.rpcTotal.inc({ method, code: codeName(code) });
      this.options.metrics?.rpcDuration.observe({ method }, seconds);
      const line = {
        method,
        uid: safeUid(uid),
        keyId,
        outcome: code === grpcStatus.OK ? 'ok' : kind,
        code: codeName(code),
        durationMs: Math.round(seconds * 1e6) / 1e3,
        ...(details ? { error: details } : {}),
      };
      if (code === grpcStatus.OK) {
        if (method === 'status') this.options.logger.debug(line, 'rpc');
        else this.options.logger.info(line, 'rpc');
      } else if (code === grpcStatus.INTERNAL) {
        this.options.logger.error(line, 'rpc');
      } else {
        this.options.logger.warn(line, 'rpc');
      }
    };

    work(signal).then(
      ({ response, keyId }) => {
        if (signal.aborted && method !== 'status') {
          // The caller has given up; do not pretend success arrived in time.
          const m = mapError(signal.reason);
          finish(m.code, keyId, m.kind, 'deadline passed before the reply');
          cb(toServiceError({ ...m, code: grpcStatus.DEADLINE_EXCEEDED, details: 'deadline exceeded' }));
          return;
        }
        finish(grpcStatus.OK, keyId);
        cb(null, response);
      },
      (err: unknown) => {
        const m = mapError(signal.aborted && !(err instanceof Error && 'kind' in err) ? signal.reason : err);
        const keyId = (call.request as { key_id?: string } | undefined)?.key_id;
        finish(m.code, keyId ? keyId.slice(0, 128) : undefined, m.kind, m.details);
        cb(toServiceError(m));
      },
    );
  }
}
