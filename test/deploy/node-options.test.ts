/**
 * The V8 flags the plugin ships with (SHIPPED_NODE_OPTIONS) are the same in every shipped
 * manifest, and Node accepts them in NODE_OPTIONS (only allow-listed V8 flags are).
 */
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { SHIPPED_NODE_OPTIONS } from '../../src/cli/render/node-options.js';

const root = process.cwd();
const read = (f: string): string => readFileSync(join(root, f), 'utf8');

describe('shipped NODE_OPTIONS', () => {
  it('is set, and Node starts with it in NODE_OPTIONS', () => {
    expect(SHIPPED_NODE_OPTIONS).toMatch(/^--[a-z-]+=\d+( --[a-z-]+=\d+)*$/);
    const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.execArgv.length))'], {
      env: { ...process.env, NODE_OPTIONS: SHIPPED_NODE_OPTIONS },
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('the Dockerfile sets exactly it', () => {
    const m = /^ENV NODE_OPTIONS="([^"]*)"$/m.exec(read('Dockerfile'));
    expect(m?.[1]).toBe(SHIPPED_NODE_OPTIONS);
  });

  it.each(['deploy/static-pod/k8s-kms-plugin.yaml', 'deploy/static-pod/k8s-kms-plugin-v2beta1.yaml'])(
    '%s passes it to the container',
    (file) => {
      const pod = parse(read(file)) as {
        spec: { containers: Array<{ env?: Array<{ name: string; value: string }> }> };
      };
      expect(pod.spec.containers[0].env).toContainEqual({
        name: 'NODE_OPTIONS',
        value: SHIPPED_NODE_OPTIONS,
      });
    },
  );

  it('the systemd unit sets it', () => {
    expect(read('deploy/systemd/k8s-kms-plugin.service').split('\n')).toContain(
      `Environment=NODE_OPTIONS=${SHIPPED_NODE_OPTIONS}`,
    );
  });
});
