/**
 * The Azure fakes' TLS material: a throwaway test PKI (test/support/test-pki.ts) per set of extra
 * DNS names, made once per process and kept as PEM text (the files are removed at once).
 */
import { createTestPki } from '../../support/test-pki.js';

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
  const made = createTestPki({ extraDns });
  made.remove();
  const pki = { ca: made.ca, cert: made.cert, key: made.key };
  cache.set(id, pki);
  return pki;
}
