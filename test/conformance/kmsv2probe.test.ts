/**
 * The independent Go client (../shared/tools/kmsv2probe, grpc-go like kube-apiserver) against the
 * real plugin process: 29/29 on a filesystem socket (v2) and on an abstract socket (v2beta1).
 * Runs when the binary exists (.ci/run builds it; or set KMSV2PROBE); skipped, and shown as
 * skipped, otherwise.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { keygen } from '../../src/cli/keygen.js';
import { spawnPlugin, tempDir } from '../support/plugin-process.js';

const PROBE = process.env.KMSV2PROBE ?? '/opt/kmsv2probe/bin/kmsv2probe';
const maybe = existsSync(PROBE) ? describe : describe.skip;

function probe(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(PROBE, args, { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

maybe('kmsv2probe conformance (independent Go client)', () => {
  const dir = tempDir('kkp-probe-');
  const keyFile = join(dir.path, 'kek.json');
  keygen(keyFile);
  afterAll(() => dir.cleanup());

  it('29/29 on a filesystem socket with Status version v2', async () => {
    const sock = join(dir.path, 'kms.sock');
    const p = await spawnPlugin({
      endpoint: `unix://${sock}`,
      args: [
        '--local-key-file',
        keyFile,
        '--listen',
        `unix://${sock}`,
        '--health-addr',
        '',
        '--log-level',
        'error',
      ],
    });
    try {
      const r = await probe(['conformance', '--socket', sock]);
      expect(r.out.trim().split('\n').pop()).toBe('conformance: 29 passed, 0 failed');
      expect(r.code).toBe(0);
    } finally {
      await p.stop();
    }
  });

  it('29/29 on an abstract socket with Status version v2beta1 (the kube-apiserver 1.27/1.28 setup)', async () => {
    const name = `kkp-probe-${process.pid}`;
    const p = await spawnPlugin({
      endpoint: `unix:///@${name}`,
      args: [
        '--local-key-file',
        keyFile,
        '--listen',
        `unix:///@${name}`,
        '--status-version',
        'v2beta1',
        '--health-addr',
        '',
        '--log-level',
        'error',
      ],
    });
    try {
      const r = await probe(['conformance', '--socket', `@${name}`, '--allow-v2beta1']);
      expect(r.out.trim().split('\n').pop()).toBe('conformance: 29 passed, 0 failed');
    } finally {
      await p.stop();
    }
  });
});
