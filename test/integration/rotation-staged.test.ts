/**
 * Staged local rotation on running plugins (dist/ CLI, real processes): `rotate --stage` is loaded
 * by every plugin (metric, /healthz?verbose, `probe --expect-loaded`) without changing key_id; a
 * node whose copy lacks it fails the probe; `rotate --promote` switches key_id.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { copyFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { runCli } from '../support/plugin-process.js';
import { harness, sleep, statusKeyId, waitForKeyIdChange } from './rotation-support.js';

const h = harness('staged');
afterAll(() => h.cleanup());

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** `probe --expect-loaded 2` against one running plugin and its health port. */
const expectLoaded2 = (endpoint: string, port: number): ReturnType<typeof runCli> =>
  runCli(['probe', '--socket', endpoint, '--health-addr', `127.0.0.1:${port}`, '--expect-loaded', '2']);

describe('rotate --stage / --promote with running plugins', () => {
  it('a staged version is loaded everywhere but written nowhere until promoted', async () => {
    const keyA = h.newKeyFile('kek-a.json');
    const keyB = join(h.dir, 'kek-b.json');
    copyFileSync(keyA, keyB);
    const portA = await freePort();
    const portB = await freePort();
    const a = await h.start(keyA, ['--health-addr', `127.0.0.1:${portA}`]);
    const b = await h.start(keyB, ['--health-addr', `127.0.0.1:${portB}`]);
    const before = await statusKeyId(a.endpoint);
    expect(await statusKeyId(b.endpoint)).toBe(before);

    const staged = await runCli(['rotate', '--local-key-file', keyA, '--stage']);
    expect(staged.code).toBe(0);
    expect(staged.stdout).toContain('staged version 2');
    expect(staged.stdout).toContain('probe --expect-loaded 2');

    // node A holds version 2 (staged); node B's copy has not been updated yet
    let probeA = await expectLoaded2(a.endpoint, portA);
    for (let i = 0; i < 40 && probeA.code !== 0; i++) {
      await sleep(100);
      probeA = await expectLoaded2(a.endpoint, portA);
    }
    expect(probeA.code).toBe(0);
    expect(probeA.stdout).toMatch(/PASS kek-versions .*version 2 loaded \(write 1, staged 2\)/);
    const probeB = await expectLoaded2(b.endpoint, portB);
    expect(probeB.code).toBe(1);
    expect(probeB.stdout).toMatch(/FAIL kek-versions .*version 2 is NOT loaded \(write 1\)/);

    const healthz = await (await fetch(`http://127.0.0.1:${portA}/healthz?verbose`)).text();
    expect(healthz).toContain('[+]kek-versions ok: loaded: write 1, staged 2');
    const metrics = await (await fetch(`http://127.0.0.1:${portA}/metrics`)).text();
    expect(metrics).toContain(
      'kms_plugin_kek_versions_loaded{provider="local",role="primary",version="2",use="staged"} 1',
    );

    // several probe periods later, neither node writes with the staged version
    await sleep(1000);
    expect(await statusKeyId(a.endpoint)).toBe(before);

    // copy to node B, promote on both copies: both switch key_id, to the same one
    copyFileSync(keyA, keyB);
    const promoted = await runCli(['rotate', '--local-key-file', keyA, '--promote', '2']);
    expect(promoted.code).toBe(0);
    expect(promoted.stdout).toContain('promoted version 2 to primary');
    copyFileSync(keyA, keyB);
    const afterA = await waitForKeyIdChange(a.endpoint, before, 10_000);
    const afterB = await waitForKeyIdChange(b.endpoint, before, 10_000);
    expect(afterA).toBe(afterB);
    const m2 = await (await fetch(`http://127.0.0.1:${portB}/metrics`)).text();
    expect(m2).toContain('version="2",use="write"} 1');
    await h.stop(a);
    await h.stop(b);
  }, 60_000);
});
