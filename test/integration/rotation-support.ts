/** Shared helpers for test/integration/rotation*.test.ts and multikek*.test.ts: local-KEK plugin processes. */
import { expect } from '@jest/globals';
import { join } from 'node:path';
import { keygen } from '../../src/cli/keygen.js';
import { readKeyFile, writeKeyFile, zeroKeyFile } from '../../src/kek/local/keyfile.js';
import { KmsClient } from '../../src/server/client.js';
import { runCli, spawnPlugin, tempDir, type SpawnedPlugin } from '../support/plugin-process.js';

export const SECRET = Buffer.from('{"kind":"Secret","data":{"token":"c2VjcmV0"}}');

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface Harness {
  dir: string;
  /** A plugin process on `keyFile` (abstract socket, no health port, probes every 200 ms by default). */
  start(keyFile: string, extra?: string[], probeInterval?: string): Promise<SpawnedPlugin>;
  /** A plugin process with only the given args (plus listen / health / log flags). */
  startWith(args: string[]): Promise<SpawnedPlugin>;
  /** SIGTERM and expect a clean exit. */
  stop(p: SpawnedPlugin): Promise<void>;
  newKeyFile(name: string): string;
  cleanup(): Promise<void>;
}

export function harness(name: string): Harness {
  const dir = tempDir(`kkp-${name}-`);
  const running: SpawnedPlugin[] = [];
  let n = 0;
  const startWith = async (args: string[]): Promise<SpawnedPlugin> => {
    n += 1;
    const endpoint = `unix:///@kkp-${name}-${process.pid}-${n}`;
    const p = await spawnPlugin({
      endpoint,
      args: ['--listen', endpoint, '--health-addr', '', '--log-level', 'info', ...args],
    });
    running.push(p);
    return p;
  };
  return {
    dir: dir.path,
    startWith,
    start: (keyFile, extra = [], probeInterval = '200ms') =>
      startWith([
        '--provider',
        'local',
        '--local-key-file',
        keyFile,
        '--probe-interval',
        probeInterval,
        ...extra,
      ]),
    stop: async (p) => {
      expect(await p.stop()).toBe(0);
    },
    newKeyFile: (file) => {
      const path = join(dir.path, file);
      keygen(path);
      return path;
    },
    cleanup: async () => {
      await Promise.allSettled(running.map((p) => p.stop('SIGKILL')));
      dir.cleanup();
    },
  };
}

export async function statusKeyId(endpoint: string): Promise<string> {
  const c = new KmsClient(endpoint);
  try {
    return (await c.status()).key_id;
  } finally {
    c.close();
  }
}

/** Polls Status until it reports something other than `from` (or times out). */
export async function waitForKeyIdChange(
  endpoint: string,
  from: string,
  timeoutMs = 10_000,
): Promise<string> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const id = await statusKeyId(endpoint);
    if (id !== from) return id;
    if (Date.now() > until) throw new Error(`key_id still ${from} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** `k8s-kms-plugin rotate --local-key-file F` as a user runs it. */
export async function rotateCli(keyFile: string): Promise<void> {
  const r = await runCli(['rotate', '--local-key-file', keyFile]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
}

/** Points the key file's primary back at `version` (what a careless restore or edit does). */
export function setPrimary(keyFile: string, version: number): void {
  const { file } = readKeyFile(keyFile);
  file.primary = version;
  writeKeyFile(keyFile, file);
  zeroKeyFile(file);
}
