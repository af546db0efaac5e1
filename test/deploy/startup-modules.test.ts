/**
 * What the plugin process loads at start. Every module loaded costs start-up time and resident
 * memory on a control-plane node (docs/benchmarks.md, real-cadence RSS), so the heavy libraries of
 * other commands and other providers stay out of `serve` and of quick commands: the etcd client
 * (census), the Kubernetes client (reencrypt), the PKCS#11 addon and every cloud SDK are imported
 * only by the command or provider that uses them, and the hand-written codecs replace proto-loader.
 */
import { describe, expect, it } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const HEAVY = [
  'etcd3',
  '@kubernetes/client-node',
  'pkcs11js',
  '@grpc/proto-loader',
  'protobufjs',
  '@aws-sdk/client-kms',
  '@google-cloud/kms',
  '@azure/keyvault-keys',
];

const TRACE = ['--import', join(ROOT, 'test/support/load-trace.mjs'), join(ROOT, 'dist/cli/main.js')];

function heavyIn(stderr: string): string[] {
  const urls = stderr
    .split('\n')
    .filter((l) => l.startsWith('LOADED '))
    .map((l) => l.slice('LOADED '.length));
  expect(urls.length).toBeGreaterThan(10); // the trace works: the CLI's own modules are listed
  return HEAVY.filter((pkg) => urls.some((u) => u.includes(`/node_modules/${pkg}/`)));
}

/** Runs serve until its first DEK is ready (everything serving needs is loaded), then SIGTERM. */
function serveUntilReady(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...TRACE, 'serve', ...args], { cwd: ROOT });
    let err = ''; // logs and the trace both go to stderr
    const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    child.stdout.resume();
    child.stderr.on('data', (b: Buffer) => {
      err += b.toString();
      if (err.includes('"dekId"')) child.kill('SIGTERM');
    });
    child.on('error', reject);
    child.on('close', () => {
      clearTimeout(timer);
      if (!err.includes('"dekId"')) reject(new Error(`serve never became ready:\n${err.slice(-2000)}`));
      else resolve(err);
    });
  });
}

describe('modules loaded at start', () => {
  it('`version` loads none of the heavy libraries', () => {
    const r = spawnSync(process.execPath, [...TRACE, 'version'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).toBe(0);
    expect(heavyIn(r.stderr)).toEqual([]);
  });

  it('`serve` on the local provider, up to its first DEK, loads none of them either', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kms-startup-'));
    try {
      const key = join(dir, 'kek.json');
      const keygen = spawnSync(process.execPath, [join(ROOT, 'dist/cli/main.js'), 'keygen', '--out', key], {
        encoding: 'utf8',
      });
      expect(keygen.status).toBe(0);
      const stderr = await serveUntilReady([
        '--provider',
        'local',
        '--local-key-file',
        key,
        '--listen',
        `unix://${join(dir, 'kms.sock')}`,
        '--health-addr',
        '',
      ]);
      expect(heavyIn(stderr)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the trace sees a heavy library when a command really uses it (the check can fail)', () => {
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        join(ROOT, 'test/support/load-trace.mjs'),
        '--input-type=module',
        '-e',
        "await import('etcd3');",
      ],
      { cwd: ROOT, encoding: 'utf8', timeout: 30_000 },
    );
    expect(r.stderr).toMatch(/LOADED .*\/node_modules\/etcd3\//);
  });
});
