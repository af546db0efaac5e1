/**
 * A KMS v2 client over a Unix socket (grpc-js), used by `probe` and by tests. It dials the way
 * kube-apiserver does: one connection, plaintext HTTP/2, :authority "localhost", a deadline per
 * call, wait-for-ready.
 */
import { Client, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { METHODS, type DecryptRequest, type DecryptResponse, type EncryptRequest, type EncryptResponse, type StatusResponse } from './proto.js';
import { kmsServiceDefinition } from './proto.js';
import { parseEndpoint } from './socket.js';

export class KmsClient {
  private readonly client: Client;

  /** `endpoint` is unix:///path or unix:///@name (as in the EncryptionConfiguration). */
  constructor(endpoint: string, options: { waitForReady?: boolean } = {}) {
    const ep = parseEndpoint(endpoint);
    const target = ep.kind === 'abstract' ? `unix:\0${ep.name}` : `unix://${ep.path}`;
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
        (err: ServiceError | null, res?: Res) => (err ? reject(err) : resolve(res as Res)),
      );
    });
  }
}
