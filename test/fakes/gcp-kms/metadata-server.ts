/**
 * A fake GCE/GKE metadata server, enough for google-auth-library's Application Default
 * Credentials: point it with GCE_METADATA_HOST=<host:port> and the SDK fetches `token` from here.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export class FakeMetadataServer {
  /** Paths requested, in order. */
  readonly requests: string[] = [];
  tokenRequests = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    /** The access token handed out (tests assert the KMS fake received it). */
    readonly token: string,
    readonly projectId: string,
  ) {}

  static async start(options: { token?: string; projectId?: string } = {}): Promise<FakeMetadataServer> {
    const token = options.token ?? `md-token-${Math.random().toString(36).slice(2)}`;
    const projectId = options.projectId ?? 'fake-project';
    const holder: { self?: FakeMetadataServer } = {};
    const server = createServer((req, res) => holder.self?.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    holder.self = new FakeMetadataServer(server, (server.address() as AddressInfo).port, token, projectId);
    return holder.self;
  }

  /** Value for GCE_METADATA_HOST. */
  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '').split('?')[0];
    this.requests.push(path);
    const send = (status: number, body: string, type = 'application/text'): void => {
      res.writeHead(status, { 'Metadata-Flavor': 'Google', 'Content-Type': type });
      res.end(body);
    };
    if (req.headers['metadata-flavor'] !== 'Google') return send(403, 'Missing Metadata-Flavor header');
    switch (path) {
      case '/':
      case '/computeMetadata/v1':
      case '/computeMetadata/v1/':
      case '/computeMetadata/v1/instance':
        return send(200, 'ok');
      case '/computeMetadata/v1/project/project-id':
        return send(200, this.projectId);
      case '/computeMetadata/v1/universe/universe-domain':
      case '/computeMetadata/v1/universe/universe_domain':
        return send(200, 'googleapis.com');
      case '/computeMetadata/v1/instance/service-accounts/default/email':
        return send(200, `plugin@${this.projectId}.iam.gserviceaccount.com`);
      case '/computeMetadata/v1/instance/service-accounts/default/token':
        this.tokenRequests += 1;
        return send(
          200,
          JSON.stringify({ access_token: this.token, expires_in: 3599, token_type: 'Bearer' }),
          'application/json',
        );
      default:
        return send(404, 'not found');
    }
  }
}
