/**
 * The apiserver-emulation conformance suite against real plugin processes
 * (`node dist/cli/main.js serve`) using the local KEK.
 */
import { afterAll } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { keygen } from '../../src/cli/keygen.js';
import { tempDir } from '../support/plugin-process.js';
import { defineApiserverConformance, pluginStarter } from './suite.js';

const dir = tempDir('kkp-conf-');
const keyFile = join(dir.path, 'kek.json');
const otherKeyFile = join(dir.path, 'other.json');
keygen(keyFile);
keygen(otherKeyFile);

afterAll(() => dir.cleanup());

const start = pluginStarter('local', dir.path);

function startWith(file: string, statusVersion: 'v2' | 'v2beta1') {
  return start(['--provider', 'local', '--local-key-file', file], statusVersion);
}

defineApiserverConformance({
  name: 'local',
  start: ({ statusVersion }) => startWith(keyFile, statusVersion),
  startOtherKek: () => startWith(otherKeyFile, 'v2'),
  secrets: () =>
    (JSON.parse(readFileSync(keyFile, 'utf8')) as { keys: Array<{ key: string }> }).keys.map((k) => k.key),
});
