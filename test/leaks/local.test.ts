/**
 * No secret leaks with the local provider: the key-file keys (every version, and those of a
 * replacement file the plugin refuses) must not show up anywhere, including when the key file
 * is truncated mid-write, holds a malformed key, is group-readable, replaced or deleted.
 * See ./scenario.ts.
 */
import { afterAll, beforeAll, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  addVersion,
  generateKeyFile,
  readKeyFile,
  serializeKeyFile,
  writeKeyFile,
  type KeyFile,
} from '../../src/kek/local/keyfile.js';
import { LocalProvider } from '../../src/kek/local/provider.js';
import { expectNoLeaks, runLeakScenario } from './scenario.js';

const dir = mkdtempSync(join(tmpdir(), 'kkp-leaks-local-'));
const keyFile = join(dir, 'kek.json');
const keys: Buffer[] = [];
let good = '';

const remember = (file: KeyFile): void => {
  for (const k of file.keys) if (!keys.some((x) => x.equals(k.key))) keys.push(Buffer.from(k.key));
};

beforeAll(() => {
  const file = generateKeyFile();
  remember(file);
  writeKeyFile(keyFile, file);
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Replaces the key file's content (atomically, mode 0600) with `text`. */
function put(text: string, mode = 0o600): void {
  const tmp = `${keyFile}.tmp`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, keyFile);
}

const restore = (): void => put(good);

test('local: no seed, DEK, wrapped DEK or key-file key in logs, metrics, health pages or errors', async () => {
  const report = await runLeakScenario({
    config: () => ({ provider: 'local', local: { keyFile } }),
    proto: LocalProvider.prototype,
    rotateKek: () => {
      const { file } = readKeyFile(keyFile);
      addVersion(file);
      remember(file);
      writeKeyFile(keyFile, file);
      good = readFileSync(keyFile, 'utf8');
    },
    faults: [
      {
        name: 'key file truncated mid-write',
        inject: () => put(good.slice(0, Math.floor(good.length * 0.6))),
        clear: restore,
      },
      {
        name: 'a malformed key in the file',
        inject: () => {
          const doc = JSON.parse(good) as { keys: Array<{ key: string }> };
          const short = randomBytes(31);
          keys.push(short);
          doc.keys[0].key = short.toString('base64');
          put(JSON.stringify(doc));
        },
        clear: restore,
      },
      { name: 'key file group-readable', inject: () => put(good, 0o644), clear: restore },
      {
        name: 'key file replaced by another one',
        inject: () => {
          const other = generateKeyFile();
          remember(other);
          put(serializeKeyFile(other));
        },
        clear: restore,
      },
      { name: 'key file deleted', inject: () => rmSync(keyFile), clear: restore },
    ],
    secrets: () => keys.map((k, i): [string, Buffer] => [`key-file key #${i}`, k]),
  });
  expectNoLeaks(report, 5);
}, 60_000);
