/**
 * Rollback refusal and the key-file tooling, against real plugin processes (contract §4, §9 check 32):
 *
 * - A → B → A (primary edited back) is refused on the running plugin AND after a restart, and a
 *   keyIdGeneration bump gives an id different from both;
 * - the file watch alone (long probe interval) picks up `rotate`;
 * - `rotate` / `rotate --retire` from the command line.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { readFileSync, statSync } from 'node:fs';
import { rotateKeyFile } from '../../src/cli/rotate.js';
import { runCli } from '../support/plugin-process.js';
import {
  harness,
  rotateCli,
  setPrimary,
  sleep,
  statusKeyId,
  waitForKeyIdChange,
} from './rotation-support.js';

const h = harness('rbk');
afterAll(() => h.cleanup());

describe('KEK rotation (local key file, real plugin processes)', () => {
  it('check 32: A → B → A is refused (keeps B, warns) on the running plugin and after a restart; a keyIdGeneration bump gives a fresh id', async () => {
    const keyFile = h.newKeyFile('kek-32.json');
    const plugin = await h.start(keyFile);
    const a = await statusKeyId(plugin.endpoint);
    rotateKeyFile(keyFile);
    const b = await waitForKeyIdChange(plugin.endpoint, a);

    setPrimary(keyFile, 1); // the primary goes back to version 1 (A)
    await sleep(1200); // the watch hint and several probes see it
    expect(await statusKeyId(plugin.endpoint)).toBe(b);
    expect(plugin.output()).toContain('OLDER key version');
    await h.stop(plugin);

    // A restart must not fall back to A either (no state on disk: newest version wins).
    const restarted = await h.start(keyFile);
    expect(await statusKeyId(restarted.endpoint)).toBe(b);
    await sleep(600);
    expect(await statusKeyId(restarted.endpoint)).toBe(b);
    expect(restarted.output()).toContain('OLDER key version');
    await h.stop(restarted);

    // The operator moves on deliberately: a new key-id generation gives an id never used before.
    const bumped = await h.start(keyFile, ['--key-id-generation', '1']);
    const c = await statusKeyId(bumped.endpoint);
    expect(c).not.toBe(a);
    expect(c).not.toBe(b);
    await h.stop(bumped);
  });

  it('the running plugin notices `rotate` through the file watch alone (60 s probe interval)', async () => {
    const keyFile = h.newKeyFile('kek-watch.json');
    const plugin = await h.start(keyFile, [], '60s');
    const a = await statusKeyId(plugin.endpoint);
    const t0 = Date.now();
    rotateKeyFile(keyFile);
    const b = await waitForKeyIdChange(plugin.endpoint, a, 8000);
    expect(b).not.toBe(a);
    expect(Date.now() - t0).toBeLessThan(8000);
    expect(plugin.output()).toContain('local key file reloaded');
    await h.stop(plugin);
  });

  it('rotate keeps the file 0600 and older versions; --retire refuses the primary and removes an old version', async () => {
    const keyFile = h.newKeyFile('kek-cli.json');
    await rotateCli(keyFile);
    const r = await runCli(['rotate', '--local-key-file', keyFile, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ action: 'rotated', primary: 3, versions: [1, 2, 3] });
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);

    const refused = await runCli(['rotate', '--local-key-file', keyFile, '--retire', '3']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('is the primary');

    // Without etcd flags (no census possible) retirement is refused unless forced.
    const unchecked = await runCli(['rotate', '--local-key-file', keyFile, '--retire', '1']);
    expect(unchecked.code).toBe(2);
    expect(unchecked.stderr).toContain('runs a census first');
    const retired = await runCli(['rotate', '--local-key-file', keyFile, '--retire', '1', '--force']);
    expect(retired.code).toBe(0);
    expect(retired.stdout).toContain('retired version 1');
    expect(retired.stderr).toContain('backups');
    const doc = JSON.parse(readFileSync(keyFile, 'utf8')) as {
      primary: number;
      keys: Array<{ version: number }>;
    };
    expect(doc.primary).toBe(3);
    expect(doc.keys.map((k) => k.version)).toEqual([2, 3]);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
  });
});
