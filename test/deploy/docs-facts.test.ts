/**
 * Facts a real kube-apiserver confirmed (issue 12.7): the docs must not contradict them.
 */
import { describe, expect, it } from '@jest/globals';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
function markdown(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? markdown(p) : n.endsWith('.md') ? [p] : [];
  });
}
const docs = [...markdown(join(ROOT, 'docs')), join(ROOT, 'README.md')];
const text = (p: string): string => readFileSync(p, 'utf8');

describe('docs agree with kube-apiserver (issue 12.7)', () => {
  it('the readiness check is /readyz/kms-providers; there is no kms-provider-0', () => {
    for (const p of docs) expect(`${p}: ${text(p)}`).not.toMatch(/kms-provider-0/);
    expect(text(join(ROOT, 'docs/runbooks/enable-encryption.md'))).toContain('/readyz/kms-providers');
  });

  it('1.27/1.28 and filesystem sockets: "may reject", and the abstract socket works on every version', () => {
    const t = text(join(ROOT, 'docs/troubleshooting.md'));
    expect(t).toMatch(/1\.27 \/ 1\.28 may reject a filesystem socket/);
    expect(t).toMatch(/abstract socket works on every version/);
    for (const p of docs)
      expect(`${p}: ${text(p)}`).not.toMatch(/needed for (kube-apiserver )?1\.27 ?\/ ?1\.28/);
  });

  it('troubleshooting says the apiserver can take about 2 minutes to reconnect after a long outage', () => {
    expect(text(join(ROOT, 'docs/troubleshooting.md'))).toMatch(/about \*\*2 minutes\*\*/);
  });

  it('the decrypts-by-key label is key="older" everywhere, never key="old"', () => {
    for (const p of docs) expect(`${p}: ${text(p)}`).not.toMatch(/key="old"/);
    expect(text(join(ROOT, 'docs/troubleshooting.md'))).toContain(
      'kms_plugin_decrypts_by_key_total{key="older"}',
    );
    expect(text(join(ROOT, 'docs/providers/vault.md'))).toContain(
      'kms_plugin_decrypts_by_key_total{key="older"}',
    );
  });

  it('one table lists the key-unusable signals of every provider', () => {
    const t = text(join(ROOT, 'docs/key-states.md'));
    for (const signal of [
      'DisabledException',
      'KMSInvalidStateException',
      'NotFoundException',
      'without a primary',
      'DESTROY_SCHEDULED',
      'KeyDisabled',
      'min_encryption_version',
    ])
      expect(t).toContain(signal);
    for (const provider of ['aws', 'gcp', 'azure', 'vault', 'local'])
      expect(t).toMatch(new RegExp(`\\| ${provider} \\|`));
  });
});
