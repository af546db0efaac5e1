/**
 * A KMS v2 client over a Unix socket (grpc-js), used by `probe` and by tests. It dials the way
 * kube-apiserver does: one connection, plaintext HTTP/2, :authority "localhost", a deadline per
 * call, wait-for-ready.
 *
 * An abstract endpoint (unix:///@name) is reached through a private in-process forwarder (see
 * ./abstract-socket.ts), because grpc-js, like Node's net module, cannot dial the exact-length
 * abstract name that kube-apiserver and our server use.
 */
import { Client, credentials, Metadata, status as grpcStatus, type ServiceError } from '@grpc/grpc-js';
import { forwardToAbstract, type AbstractForwarder } from './abstract-socket.js';
import {
  METHODS,
  type DecryptRequest,
  type DecryptResponse,
  type EncryptRequest,
  type EncryptResponse,
  type StatusResponse,
} from './proto.js';
import { kmsServiceDefinition } from './proto.js';
import { parseEndpoint } from './socket.js';

export class KmsClient {
  private readonly client: Client;
  private readonly forwarder: AbstractForwarder | undefined;

  /** `endpoint` is unix:///path or unix:///@name (as in the EncryptionConfiguration). */
  constructor(endpoint: string, options: { waitForReady?: boolean } = {}) {
    const ep = parseEndpoint(endpoint);
    let target: string;
    if (ep.kind === 'abstract') {
      this.forwarder = forwardToAbstract(ep.name);
      target = `unix://${this.forwarder.path}`;
    } else {
      target = `unix://${ep.path}`;
    }
    this.client = new Client(target, credentials.createInsecure(), {
      'grpc.default_authority': 'localhost',
      'grpc.max_receive_message_length': 4 * 1024 * 1024,
    });
    this.waitForReady = options.waitForReady ?? true;
  }

  private readonly waitForReady: boolean;

  status(timeoutMs = 3000): Promise<StatusResponse> {
    return this.call<Record<string, never>, StatusResponse>(METHODS.status, {}, timeoutMs);
  }

  encrypt(req: Partial<EncryptRequest>, timeoutMs = 3000): Promise<EncryptResponse> {
    return this.call<Partial<EncryptRequest>, EncryptResponse>(METHODS.encrypt, req, timeoutMs);
  }

  decrypt(req: Partial<DecryptRequest>, timeoutMs = 3000): Promise<DecryptResponse> {
    return this.call<Partial<DecryptRequest>, DecryptResponse>(METHODS.decrypt, req, timeoutMs);
  }

  close(): void {
    this.client.close();
    this.forwarder?.close();
  }

  private call<Req, Res>(method: string, req: Req, timeoutMs: number): Promise<Res> {
    const def = kmsServiceDefinition();
    const m = Object.values(def).find((d) => d.path === method);
    if (!m) throw new Error(`unknown method ${method}`);
    return new Promise<Res>((resolve, reject) => {
      this.client.makeUnaryRequest<Req, Res>(
        method,
        m.requestSerialize as (r: Req) => Buffer,
        m.responseDeserialize as (b: Buffer) => Res,
        req,
        new Metadata({ waitForReady: this.waitForReady }),
        { deadline: Date.now() + timeoutMs },
        (err: ServiceError | null, res?: Res) => (err ? reject(this.explain(err)) : resolve(res as Res)),
      );
    });
  }

  /** Adds why the abstract socket could not be reached (e.g. ECONNREFUSED) to UNAVAILABLE errors. */
  private explain(err: ServiceError): ServiceError {
    const why = this.forwarder?.lastError;
    if (err.code === grpcStatus.UNAVAILABLE && why) err.details = `${err.details} (${why})`;
    return err;
  }
}
