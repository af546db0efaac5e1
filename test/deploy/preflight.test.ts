/**
 * `render preflight-job` and the report it runs (`probe --config --json`): the Job validates
 * against the Kubernetes schema (kubernetes-models batch/v1 Job) and runs exactly the plain
 * command it prints; the report names reachability, KEK state, the permission of each call and
 * the key_id, and fails on anything that would break kube-apiserver — checked against the Vault
 * fake with each call refused in turn, and end to end through the built CLI.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { parse } from 'yaml';
import { emptyPreflightReport, runDoctor } from '../../src/cli/doctor.js';
import { loadConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/observability/logger.js';
import { VaultHarness, useVaultHarness } from '../fakes/vault-transit/harness.js';
import { requireBuild, runCli, tempDir } from '../support/plugin-process.js';
import { runRender } from './run-render.js';

const dir = tempDir('kkp-preflight-');
afterAll(() => dir.cleanup());

describe('render preflight-job', () => {
  it('a valid Job on a control-plane node running the plain command it prints', async () => {
    const cfg = join(dir.path, 'local.yaml');
    writeFileSync(cfg, 'provider: local\nlocal:\n  keyFile: /etc/kms/keys.json\n');
    const text = await runRender(['render', 'preflight-job', '--config', cfg, '--timeout', '5s']);
    const job = parse(text);
    new Job(job).validate();
    const spec = job.spec.template.spec;
    expect([job.spec.backoffLimit, spec.restartPolicy, spec.hostNetwork]).toEqual([0, 'Never', true]);
    const args = spec.containers[0].args as string[];
    expect(args).toEqual([
      'probe',
      '--config',
      '/etc/k8s-kms-plugin/config.yaml',
      '--json',
      '--timeout',
      '5s',
    ]);
    expect(text).toContain(`#   k8s-kms-plugin ${args.join(' ')}`);
    // The plugin's files, read-only, and nothing writable.
    expect(spec.volumes.map((v: { hostPath: { path: string } }) => v.hostPath.path).sort()).toEqual([
      '/etc/k8s-kms-plugin/config.yaml',
      '/etc/kms/keys.json',
    ]);
    expect(spec.containers[0].volumeMounts.every((m: { readOnly: boolean }) => m.readOnly)).toBe(true);
    // Same identity and hardening as the static pod.
    const pod = parse(await runRender(['render', 'static-pod', '--config', cfg]));
    expect(spec.containers[0].securityContext).toEqual(pod.spec.containers[0].securityContext);
    const broken = structuredClone(job);
    broken.spec.backoffLimit = 'none';
    expect(() => new Job(broken).validate()).toThrow();
  });
});

describe('the preflight report (probe --config)', () => {
  let h: VaultHarness;
  useVaultHarness((started) => (h = started), 'all');

  async function preflight() {
    const cfg = join(dir.path, 'vault.yaml');
    writeFileSync(
      cfg,
      `provider: vault\nvault:\n  address: ${h.url}\n  keyName: kek\n  auth:\n    method: token\n    tokenFile: ${h.file('token', h.fake.rootToken)}\n`,
    );
    const config = loadConfig({ file: cfg, env: {} });
    const report = emptyPreflightReport(config.provider);
    const steps = await runDoctor(config, silentLogger(), 3000, report);
    return { ok: steps.every((s) => s.ok), report };
  }

  it('all granted: reachable, enabled, key_id', async () => {
    const { ok, report } = await preflight();
    expect(ok).toBe(true);
    expect(report).toMatchObject({
      provider: 'vault',
      kek: { reachable: true, state: 'enabled' },
      permissions: { describe: 'granted', encrypt: 'granted', decrypt: 'granted' },
    });
    expect(report.keyId).toMatch(/\S/);
  });

  it.each([
    ['transit/keys/kek', { describe: 'denied', encrypt: 'not-tried', decrypt: 'not-tried' }],
    ['transit/encrypt', { describe: 'granted', encrypt: 'denied', decrypt: 'not-tried' }],
    ['transit/decrypt', { describe: 'granted', encrypt: 'granted', decrypt: 'denied' }],
  ])('Vault refuses %s: that permission is "denied" and the check fails', async (path, permissions) => {
    h.fake.faults.push({ match: path, status: 403, errors: ['permission denied'] });
    const { ok, report } = await preflight();
    expect(ok).toBe(false);
    expect(report.permissions).toEqual(permissions);
    expect(report.kek.reachable).toBe(true);
  });

  it('unreachable KMS: reachable false, exit code 1 through the CLI, one JSON document', async () => {
    requireBuild();
    const cfg = join(dir.path, 'down.yaml');
    const token = join(dir.path, 'tok');
    writeFileSync(token, 'hvs.not-a-real-token-000');
    writeFileSync(
      cfg,
      `provider: vault\nvault:\n  address: http://127.0.0.1:9\n  keyName: kek\n  auth:\n    method: token\n    tokenFile: ${token}\n`,
    );
    const r = await runCli(['probe', '--config', cfg, '--json', '--timeout', '1s']);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(report).toMatchObject({
      ok: false,
      provider: 'vault',
      keyId: null,
      kek: { reachable: false, state: null },
      permissions: { describe: expect.stringMatching(/^error: /), encrypt: 'not-tried' },
    });
    expect(r.stdout).not.toContain('hvs.not-a-real-token-000');
  });
});
