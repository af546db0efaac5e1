/**
 * A throwaway test PKI made with openssl: an EC P-256 CA, a server certificate for localhost /
 * 127.0.0.1 (plus any extra DNS names) and, optionally, a client certificate, valid for 2 days.
 * Files live in a fresh temp directory (`file(name)` gives their paths) until `remove()`. Clients
 * trust `ca` in code (tlsOptions, undici Agent, caFile), never via NODE_EXTRA_CA_CERTS.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestPkiOptions {
  /** Extra DNS names for the server certificate. */
  extraDns?: string[];
  /** Also issue a client certificate (client.crt / client.key) with this common name. */
  clientCn?: string;
  caName?: string;
}

export interface TestPki {
  dir: string;
  /** PEM text of ca.crt, server.crt and server.key. */
  ca: string;
  cert: string;
  key: string;
  /** Path of a file in the PKI directory: ca.crt, ca.key, server.crt, server.key, client.crt, client.key. */
  file(name: string): string;
  remove(): void;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export function createTestPki(options: TestPkiOptions = {}): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'kkp-pki-'));
  const run = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  };
  const issue = (name: string, cn: string, ext: string): void => {
    run('req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    writeFileSync(join(dir, `${name}.cnf`), ext);
    run(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      '2',
      '-extfile',
      `${name}.cnf`,
    );
  };
  try {
    run(
      'req',
      '-x509',
      ...EC,
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '2',
      '-subj',
      `/CN=${options.caName ?? 'k8s-kms-plugin test CA'}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign',
    );
    const sans = ['DNS:localhost', 'IP:127.0.0.1', ...(options.extraDns ?? []).map((d) => `DNS:${d}`)].join(
      ',',
    );
    issue('server', 'localhost', `subjectAltName=${sans}\nextendedKeyUsage=serverAuth\n`);
    if (options.clientCn) issue('client', options.clientCn, 'extendedKeyUsage=clientAuth\n');
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const read = (name: string): string => readFileSync(join(dir, name), 'utf8');
  return {
    dir,
    ca: read('ca.crt'),
    cert: read('server.crt'),
    key: read('server.key'),
    file: (name) => join(dir, name),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
