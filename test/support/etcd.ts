/**
 * A real etcd (Debian's etcd-server, 3.4) for tests: one member on 127.0.0.1 with random client
 * and peer ports and a temp data dir, optionally with TLS and client-certificate auth (certificates
 * from test-pki.ts). stop() kills it and removes the data dir.
 * Suites use describeEtcd() (describe-etcd.ts). No jest import here: bench/ uses this too.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { createTestPki, type TestPki } from './test-pki.js';

export function etcdBinary(): string | undefined {
  const env = process.env.ETCD_BIN;
  if (env && existsSync(env)) return env;
  for (const p of ['/usr/bin/etcd', '/usr/local/bin/etcd']) if (existsSync(p)) return p;
  const r = spawnSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' });
  const found = r.stdout.trim();
  return r.status === 0 && found ? found : undefined;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface TestEtcd {
  /** http://127.0.0.1:PORT or https://127.0.0.1:PORT */
  endpoint: string;
  dataDir: string;
  /** With tls: the PKI (ca.crt, server.*, client.crt/client.key). */
  pki?: TestPki;
  /** A client for arranging data (puts), with the client certificate when TLS is on. */
  client(): Etcd3;
  stop(): Promise<void>;
}

export interface StartEtcdOptions {
  /** TLS on the client port, with client-certificate auth. */
  tls?: boolean;
  /** Max request bytes (etcd default 1.5 MiB). */
  maxRequestBytes?: number;
}

export async function startEtcd(options: StartEtcdOptions = {}): Promise<TestEtcd> {
  const bin = etcdBinary();
  if (!bin) throw new Error('etcd binary not found (apt-get install etcd-server, or set ETCD_BIN)');
  const pki = options.tls ? createTestPki({ clientCn: 'census-test' }) : undefined;
  let lastErr: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const dataDir = mkdtempSync(join(tmpdir(), 'kkp-etcd-'));
    const clientPort = await freePort();
    const peerPort = await freePort();
    const scheme = pki ? 'https' : 'http';
    const endpoint = `${scheme}://127.0.0.1:${clientPort}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    const args = [
      '--name',
      'test',
      '--data-dir',
      dataDir,
      '--listen-client-urls',
      endpoint,
      '--advertise-client-urls',
      endpoint,
      '--listen-peer-urls',
      peer,
      '--initial-advertise-peer-urls',
      peer,
      '--initial-cluster',
      `test=${peer}`,
      '--log-level',
      'error',
      '--logger',
      'zap',
    ];
    if (options.maxRequestBytes) args.push('--max-request-bytes', String(options.maxRequestBytes));
    if (pki) {
      args.push(
        '--cert-file',
        pki.file('server.crt'),
        '--key-file',
        pki.file('server.key'),
        '--client-cert-auth',
        '--trusted-ca-file',
        pki.file('ca.crt'),
      );
    }
    const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    const makeClient = (): Etcd3 =>
      new Etcd3({
        hosts: endpoint,
        ...(pki
          ? {
              credentials: {
                rootCertificate: Buffer.from(pki.ca),
                privateKey: readFileSync(pki.file('client.key')),
                certChain: readFileSync(pki.file('client.crt')),
              },
            }
          : {}),
      });
    try {
      await waitReady(child, makeClient, () => stderr);
      return {
        endpoint,
        dataDir,
        pki,
        client: makeClient,
        stop: async () => {
          await kill(child);
          rmSync(dataDir, { recursive: true, force: true });
          pki?.remove();
        },
      };
    } catch (err) {
      lastErr = err as Error;
      await kill(child);
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
  pki?.remove();
  throw lastErr ?? new Error('etcd did not start');
}

async function waitReady(child: ChildProcess, makeClient: () => Etcd3, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  let exited: number | null = null;
  child.once('exit', (code) => {
    exited = code ?? -1;
  });
  while (Date.now() < deadline) {
    if (exited !== null) throw new Error(`etcd exited (${String(exited)}): ${stderr()}`);
    const c = makeClient();
    try {
      await c.get('/readiness-probe').string();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      c.close();
    }
  }
  throw new Error(`etcd not ready after 30 s: ${stderr()}`);
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
    }, 5000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
