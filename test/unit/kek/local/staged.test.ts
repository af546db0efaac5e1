/**
 * Staged local rotation: `rotate --stage` adds a version every plugin loads and decrypts with but
 * none wraps with; `--promote` makes it primary. What each plugin holds is visible in the
 * kms_plugin_kek_versions_loaded metric and the kek-versions check of /healthz?verbose.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keygen } from '../../../../src/cli/keygen.js';
import { rotateKeyFile } from '../../../../src/cli/rotate.js';
import { timeoutSignal } from '../../../../src/deadline.js';

import { describeLoaded } from '../../../../src/health/view.js';
import {
  addVersion,
  generateKeyFile,
  newestWritable,
  parseKeyFile,
  promoteVersion,
  serializeKeyFile,
  stageVersion,
} from '../../../../src/kek/local/keyfile.js';
import { LocalProvider } from '../../../../src/kek/local/provider.js';
import { silentLogger } from '../../../../src/observability/logger.js';
import { Metrics } from '../../../../src/observability/metrics.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kkp-staged-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('key file: stage and promote', () => {
  it('stage adds a version that is not primary and not the write version; promote makes it both', () => {
    const f = generateKeyFile();
    expect(stageVersion(f)).toBe(2);
    expect(f.primary).toBe(1);
    expect(newestWritable(f).version).toBe(1);
    const text = serializeKeyFile(f);
    const doc = JSON.parse(text) as {
      formatVersion: number;
      keys: Array<{ version: number; staged?: boolean }>;
    };
    // formatVersion 2 while a version is staged: an older plugin refuses the file rather than write with it
    expect(doc.formatVersion).toBe(2);
    expect(doc.keys).toEqual([
      expect.not.objectContaining({ staged: true }),
      expect.objectContaining({ version: 2, staged: true }),
    ]);
    const back = parseKeyFile(text, 'k.json');
    expect(back.keys[1].staged).toBe(true);
    expect(back.keys[1].key.equals(f.keys[1].key)).toBe(true);

    promoteVersion(f, 2);
    expect(f.primary).toBe(2);
    expect(f.keys[1].staged).toBeUndefined();
    expect(newestWritable(f).version).toBe(2);
    expect((JSON.parse(serializeKeyFile(f)) as { formatVersion: number }).formatVersion).toBe(1);
  });

  it('refuses a second stage, a plain rotate while staged, promoting an older or missing version, a staged primary', () => {
    const f = generateKeyFile();
    addVersion(f); // primary 2
    stageVersion(f); // 3
    expect(() => stageVersion(f)).toThrow(/version 3 is already staged/);
    expect(() => addVersion(f)).toThrow(/version 3 is staged: promote it/);
    expect(() => promoteVersion(f, 1)).toThrow(/older than the primary/);
    expect(() => promoteVersion(f, 9)).toThrow(/not in the key file/);
    promoteVersion(f, 3);
    expect(() => promoteVersion(f, 3)).toThrow(/already the primary/);
    const bad = JSON.parse(serializeKeyFile(f)) as { keys: Array<{ staged?: boolean }> };
    bad.keys[2].staged = true;
    expect(() => parseKeyFile(JSON.stringify({ ...bad, formatVersion: 2 }), 'k.json')).toThrow(
      /primary version cannot be staged/,
    );
    expect(() => parseKeyFile(JSON.stringify({ ...bad, formatVersion: 3 }), 'k.json')).toThrow(
      /formatVersion/,
    );
  });

  it('rotateKeyFile --stage / --promote rewrite the file and report staged versions', () => {
    const path = join(dir, 'kek.json');
    keygen(path);
    expect(rotateKeyFile(path, { stage: true })).toMatchObject({
      action: 'staged',
      version: 2,
      primary: 1,
      versions: [1, 2],
      staged: [2],
    });
    expect(rotateKeyFile(path, { promote: 2 })).toMatchObject({
      action: 'promoted',
      version: 2,
      primary: 2,
      staged: [],
    });
  });
});

describe('LocalProvider with a staged version', () => {
  const make = (path: string, metrics = new Metrics({ processMetrics: false })): LocalProvider =>
    new LocalProvider(
      { keyFile: path, allowInsecurePermissions: false, createIfMissing: false, watch: false },
      { logger: silentLogger(), metrics, role: 'primary' },
    );

  it('never wraps with the staged version (current and newest stay the primary), but unwraps with it', async () => {
    const path = join(dir, 'kek.json');
    keygen(path);
    // node B: a copy where the staged version was already promoted, wraps a DEK with it
    rotateKeyFile(path, { stage: true });
    const copy = join(dir, 'kek-b.json');
    copyFileSync(path, copy);
    rotateKeyFile(copy, { promote: 2 });
    const a = make(path);
    const b = make(copy);
    try {
      const s = timeoutSignal(1000);
      expect((await a.currentVersion(s)).ref.version).toBe('1');
      expect((await a.newestVersion(s)).ref.version).toBe('1');
      const bv = await b.newestVersion(s);
      expect(bv.ref.version).toBe('2');
      const dek = randomBytes(32);
      const w = await b.wrap(dek, bv, s);
      // node A (still writing with 1) reads what B wrote under 2
      expect((await a.unwrap(w.wrapped, w.ref, s)).equals(dek)).toBe(true);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('reports loaded versions to the metric and for /healthz?verbose, and updates them on reload', async () => {
    const path = join(dir, 'kek.json');
    keygen(path);
    rotateKeyFile(path);
    const metrics = new Metrics({ processMetrics: false });
    const p = make(path, metrics);
    try {
      expect(p.loadedVersions()).toEqual([
        { version: '1', use: 'decrypt' },
        { version: '2', use: 'write' },
      ]);
      rotateKeyFile(path, { stage: true });
      await p.currentVersion(timeoutSignal(1000)); // reload
      expect(p.loadedVersions()).toEqual([
        { version: '1', use: 'decrypt' },
        { version: '2', use: 'write' },
        { version: '3', use: 'staged' },
      ]);
      const text = await metrics.registry.metrics();
      expect(text).toContain(
        'kms_plugin_kek_versions_loaded{provider="local",role="primary",version="3",use="staged"} 1',
      );
      expect(text).toContain(
        'kms_plugin_kek_versions_loaded{provider="local",role="primary",version="2",use="write"} 1',
      );
      expect(describeLoaded(p.loadedVersions())).toBe('write 2, decrypt 1, staged 3');
      rotateKeyFile(path, { promote: 3 });
      await p.currentVersion(timeoutSignal(1000));
      const after = await metrics.registry.metrics();
      expect(after).toContain('version="3",use="write"} 1');
      expect(after).not.toContain('use="staged"');
      // never key material in the metric
      const raw = readFileSync(path, 'utf8');
      for (const m of raw.matchAll(/"key": "([^"]+)"/g)) expect(after).not.toContain(m[1]);
    } finally {
      await p.close();
    }
  });
});
