/**
 * The command line as a user runs it: keygen, version, probe, config errors, --dev, and a scan of
 * everything the plugin logs at the most verbose level for secrets.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { KmsClient } from '../../src/server/client.js';
import { CLI, runCli, spawnPlugin, tempDir } from '../support/plugin-process.js';

const dir = tempDir('kkp-cli-');
afterAll(() => dir.cleanup());

describe('k8s-kms-plugin CLI', () => {
  it('keygen writes a 0600 key file and refuses to overwrite it', async () => {
    const out = join(dir.path, 'keys', 'kek.json');
    const r = await runCli(['keygen', '--out', out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/wrote .*kek\.json .*mode 0600/);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const doc = JSON.parse(readFileSync(out, 'utf8')) as { primary: number; keys: Array<{ key: string }> };
    expect(doc.primary).toBe(1);
    expect(Buffer.from(doc.keys[0].key, 'base64')).toHaveLength(32);
    const before = readFileSync(out, 'utf8');
    const again = await runCli(['keygen', '--out', out]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('refusing to overwrite');
    expect(readFileSync(out, 'utf8')).toBe(before);
  });

  it('version prints name and version (text and JSON)', async () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    const t = await runCli(['version']);
    expect(t.stdout).toContain(`k8s-kms-plugin ${pkg.version}`);
    const j = await runCli(['version', '--json']);
    expect(JSON.parse(j.stdout)).toMatchObject({ name: 'k8s-kms-plugin', version: pkg.version });
  });

  it.each([
    [['serve', '--provider', 'local'], 'local', '--local-'],
    [['serve', '--listen', 'unix://var/run/kms.sock', '--local-key-file', '/x'], 'listen', 'three slashes'],
    [['serve', '--provider', 'nope'], 'provider', 'expected one of'],
    [['serve', '--probe-interval', 'soon', '--local-key-file', '/x'], 'probe.interval', 'duration'],
    [['serve', '--status-version', 'v3', '--local-key-file', '/x'], 'statusVersion', 'v2beta1'],
  ])('config error %j exits 2 and names the field and the fix', async (args, field, fix) => {
    const r = await runCli(args as string[]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(field);
    expect(r.stderr).toContain(fix);
  });

  it('a YAML config error names the field', async () => {
    const cfg = join(dir.path, 'bad.yaml');
    writeFileSync(cfg, 'provider: local\nlocal:\n  keyFile: /tmp/x\n  keyfile: typo\n');
    const r = await runCli(['serve', '--config', cfg]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('local');
    expect(r.stderr).toContain('"keyfile"');
  });

  it('refuses a key file readable by others, naming the fix', async () => {
    const key = join(dir.path, 'open.json');
    await runCli(['keygen', '--out', key]);
    chmodSync(key, 0o644);
    const r = await runCli([
      'serve',
      '--local-key-file',
      key,
      '--listen',
      `unix://${join(dir.path, 'o.sock')}`,
      '--health-addr',
      '',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`chmod 600 ${key}`);
  });

  it('probe passes against a running plugin and fails (exit 1) when nothing listens', async () => {
    const key = join(dir.path, 'probe.json');
    await runCli(['keygen', '--out', key]);
    const sock = join(dir.path, 'probe.sock');
    const p = await spawnPlugin({
      endpoint: `unix://${sock}`,
      args: ['--local-key-file', key, '--listen', `unix://${sock}`, '--health-addr', ''],
    });
    try {
      const ok = await runCli(['probe', '--socket', `unix://${sock}`]);
      expect(ok.code).toBe(0);
      expect(ok.stdout).toMatch(/PASS status/);
      expect(ok.stdout).toMatch(/PASS encrypt/);
      expect(ok.stdout).toMatch(/PASS decrypt/);
      const strict = await runCli([
        'probe',
        '--socket',
        `unix://${sock}`,
        '--expect-version',
        'v2beta1',
        '--json',
      ]);
      expect(strict.code).toBe(1);
      expect(JSON.parse(strict.stdout).steps[0].detail).toContain('version');
    } finally {
      await p.stop();
    }
    const none = await runCli([
      'probe',
      '--socket',
      `unix://${join(dir.path, 'nobody.sock')}`,
      '--timeout',
      '500ms',
    ]);
    expect(none.code).toBe(1);
    expect(none.stdout).toContain('FAIL status');
  });

  it('probe --config checks a configuration without a running plugin (doctor)', async () => {
    const key = join(dir.path, 'doctor.json');
    await runCli(['keygen', '--out', key]);
    const cfg = join(dir.path, 'doctor.yaml');
    writeFileSync(cfg, `provider: local\nlocal:\n  keyFile: ${key}\n`);
    const ok = await runCli(['probe', '--config', cfg, '--json']);
    expect(ok.code).toBe(0);
    const report = JSON.parse(ok.stdout) as {
      ok: boolean;
      steps: Array<{ name: string; ok: boolean; detail: string }>;
    };
    expect(report.steps.map((s) => s.name)).toEqual(['primary:config', 'primary:kek', 'primary:wrap-unwrap']);
    expect(report.steps[1].detail).toMatch(/key_id would be local-[0-9a-f]{40}/);
    const bad = await runCli([
      'probe',
      '--provider',
      'local',
      '--local-key-file',
      join(dir.path, 'missing.json'),
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain('FAIL primary:config');
    expect(bad.stdout).toContain('keygen --out');
  });

  it('probe --config reports a disabled cloud KEK (AWS fake) as a failure that names the state', async () => {
    const { FakeAwsKms } = await import('../fakes/aws-kms/index.js');
    const fake = new FakeAwsKms();
    const url = await fake.listen();
    try {
      const k = fake.createKey();
      const env = {
        AWS_ACCESS_KEY_ID: 'AKIDFAKE',
        AWS_SECRET_ACCESS_KEY: 'fake',
        AWS_EC2_METADATA_DISABLED: 'true',
      };
      const args = ['probe', '--provider', 'aws', '--aws-key-id', k.arn, '--aws-endpoint', url];
      const ok = await runCli(args, env);
      expect(ok.stdout).toContain('PASS primary:wrap-unwrap');
      expect(ok.code).toBe(0);
      fake.setKeyState(k.arn, 'Disabled');
      const bad = await runCli(args, env);
      expect(bad.code).toBe(1);
      expect(bad.stdout).toMatch(/FAIL primary:kek .*disabled/);
    } finally {
      await fake.close();
    }
  });

  it('serve --dev creates a local key file with a loud warning and serves on the dev socket', async () => {
    const cwd = join(dir.path, 'devhome');
    const sock = `/tmp/kkp-dev-${process.pid}.sock`;
    mkdirSync(cwd, { recursive: true });
    const child = spawn(
      process.execPath,
      [CLI, 'serve', '--dev', '--listen', `unix://${sock}`, '--health-addr', ''],
      {
        cwd,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    try {
      const c = new KmsClient(`unix://${sock}`);
      const deadline = Date.now() + 10_000;
      let s;
      while (!s) {
        try {
          s = await c.status(300);
        } catch (err) {
          if (Date.now() > deadline) throw err;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      c.close();
      expect(s.healthz).toBe('ok');
      expect(existsSync(join(cwd, '.dev', 'local-kek.json'))).toBe(true);
      expect(statSync(join(cwd, '.dev', 'local-kek.json')).mode & 0o777).toBe(0o600);
      expect(out).toContain('DEVELOPMENT');
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.on('exit', r));
    }
  });

  it('logs at trace level contain no seed, DEK material, wrapped key bytes or key-file keys', async () => {
    const key = join(dir.path, 'leak.json');
    await runCli(['keygen', '--out', key]);
    const sock = join(dir.path, 'leak.sock');
    const p = await spawnPlugin({
      endpoint: `unix://${sock}`,
      args: [
        '--local-key-file',
        key,
        '--listen',
        `unix://${sock}`,
        '--health-addr',
        '',
        '--log-level',
        'trace',
      ],
    });
    const c = new KmsClient(p.endpoint);
    const secrets: Buffer[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const seed = randomBytes(32);
        secrets.push(seed);
        const e = await c.encrypt({ plaintext: seed, uid: randomUUID() });
        for (const v of Object.values(e.annotations))
          if (v.length >= 32) secrets.push(Buffer.from(v).subarray(0, 32));
        const d = await c.decrypt({
          ciphertext: e.ciphertext,
          key_id: e.key_id,
          annotations: e.annotations,
          uid: randomUUID(),
        });
        expect(Buffer.from(d.plaintext)).toEqual(seed);
        // A failing decrypt too: error paths must not leak either.
        await c
          .decrypt({ ciphertext: e.ciphertext, key_id: e.key_id, annotations: {}, uid: randomUUID() })
          .catch(() => undefined);
      }
    } finally {
      c.close();
      await p.stop();
    }
    for (const k of (JSON.parse(readFileSync(key, 'utf8')) as { keys: Array<{ key: string }> }).keys)
      secrets.push(Buffer.from(k.key, 'base64'));
    const logs = p.output();
    expect(logs.split('\n').filter(Boolean).length).toBeGreaterThan(40);
    for (const s of secrets) {
      for (const enc of [
        s.toString('hex'),
        s.toString('base64'),
        s.subarray(0, 12).toString('base64'),
        s.subarray(0, 16).toString('hex'),
      ]) {
        expect(logs).not.toContain(enc);
      }
    }
  });
});
