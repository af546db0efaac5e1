/**
 * A throwaway test PKI made with openssl at test setup: an EC P-256 CA and a server certificate for
 * localhost / 127.0.0.1 (plus any extra DNS names), valid for 2 days. Nothing is written outside a
 * temporary directory, which is removed before returning. Clients trust `ca` in code (tlsOptions),
 * never via NODE_EXTRA_CA_CERTS.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestPki {
  ca: string;
  cert: string;
  key: string;
}

const cache = new Map<string, TestPki>();

export function makeTestPki(extraDns: string[] = []): TestPki {
  const id = extraDns.join(',');
  const hit = cache.get(id);
  if (hit) return hit;
  const dir = mkdtempSync(join(tmpdir(), 'azure-fake-pki-'));
  const run = (args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  };
  try {
    run([
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '2',
      '-subj',
      '/CN=k8s-kms-plugin test CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign',
    ]);
    run([
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'server.key',
      '-out',
      'server.csr',
      '-subj',
      '/CN=localhost',
    ]);
    const sans = ['DNS:localhost', 'IP:127.0.0.1', ...extraDns.map((d) => `DNS:${d}`)].join(',');
    writeFileSync(join(dir, 'ext.cnf'), `subjectAltName=${sans}\nextendedKeyUsage=serverAuth\n`);
    run([
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'server.crt',
      '-days',
      '2',
      '-extfile',
      'ext.cnf',
    ]);
    const pki = {
      ca: readFileSync(join(dir, 'ca.crt'), 'utf8'),
      cert: readFileSync(join(dir, 'server.crt'), 'utf8'),
      key: readFileSync(join(dir, 'server.key'), 'utf8'),
    };
    cache.set(id, pki);
    return pki;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
