/**
 * The apiserver-emulation conformance suite against real plugin processes
 * (`node dist/cli/main.js serve`) using the local KEK.
 */
import { afterAll } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { keygen } from '../../src/cli/keygen.js';
import { spawnPlugin, tempDir } from '../support/plugin-process.js';
import { defineApiserverConformance } from './suite.js';

const dir = tempDir('kkp-conf-');
const keyFile = join(dir.path, 'kek.json');
const otherKeyFile = join(dir.path, 'other.json');
keygen(keyFile);
keygen(otherKeyFile);
let n = 0;

afterAll(() => dir.cleanup());

function startWith(file: string, statusVersion: 'v2' | 'v2beta1') {
  n += 1;
  // Alternate filesystem and abstract sockets: both must behave the same.
  const endpoint =
    n % 2 === 0 ? `unix://${join(dir.path, `p${n}.sock`)}` : `unix:///@kkp-conf-${process.pid}-${n}`;
  return spawnPlugin({
    endpoint,
    args: [
      '--provider',
      'local',
      '--local-key-file',
      file,
      '--listen',
      endpoint,
      '--status-version',
      statusVersion,
      '--health-addr',
      '',
      '--log-level',
      'warn',
    ],
  });
}

defineApiserverConformance({
  name: 'local',
  start: ({ statusVersion }) => startWith(keyFile, statusVersion),
  startOtherKek: () => startWith(otherKeyFile, 'v2'),
  secrets: () =>
    (JSON.parse(readFileSync(keyFile, 'utf8')) as { keys: Array<{ key: string }> }).keys.map((k) => k.key),
});
