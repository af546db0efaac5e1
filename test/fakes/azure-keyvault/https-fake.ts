/**
 * What the Azure fakes (Key Vault, Entra ID) share: an HTTPS server with the test PKI's
 * certificate, listening on loopback, addressed as https://localhost:PORT (the certificate's name).
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestPki } from './certs.js';

export class HttpsFake {
  protected readonly server: Server;
  private port = 0;

  constructor(pki: TestPki, handler: (req: IncomingMessage, res: ServerResponse) => void, keepAlive = false) {
    this.server = createServer({ key: pki.key, cert: pki.cert, keepAlive }, handler);
  }

  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
    return this.url;
  }

  get url(): string {
    return `https://localhost:${this.port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
