/** The real entry point (`k8s-kms-plugin render ...` through src/cli/main.ts): output and exit codes. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from '@jest/globals';

const root = join(dirname(new URL(import.meta.url).pathname), '..', '..');

function cli(args: string[]) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KMS_PLUGIN_')));
  return spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: root,
    env,
    encoding: 'utf8',
    timeout: 20_000,
  });
}

describe('k8s-kms-plugin render (process)', () => {
  it('prints the same EncryptionConfiguration that is checked in, exit 0', () => {
    const r = cli([
      'render',
      'encryption-config',
      '--config',
      'deploy/examples/config-local.yaml',
      '--name',
      'kms-local',
      '--resources',
      'secrets,configmaps',
    ]);
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toBe(readFileSync(join(root, 'deploy/encryption-config/local.yaml'), 'utf8'));
  });

  it('a bad option exits 2 and says which option', () => {
    const r = cli([
      'render',
      'encryption-config',
      '--config',
      'deploy/examples/config-local.yaml',
      '--name',
      'bad:name',
    ]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/--name: "bad:name" is not a valid provider name/);
  });
});
