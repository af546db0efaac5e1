/**
 * The render outputs checked in under deploy/ must equal a fresh `render` of the example configs
 * in deploy/examples/, so the two cannot drift. UPDATE_DEPLOY_EXAMPLES=1 rewrites them.
 */
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { TARGETS } from '../../src/cli/render/index.js';
import { EXAMPLES } from './examples.js';
import { runRender } from './run-render.js';

const root = join(dirname(new URL(import.meta.url).pathname), '..', '..');
const update = process.env.UPDATE_DEPLOY_EXAMPLES === '1';

describe('deploy/ examples are render output', () => {
  it('covers every target and every provider example config', () => {
    const targets = new Set(EXAMPLES.map((e) => e.argv[1]));
    expect([...targets].sort()).toEqual([...TARGETS].sort());
    for (const p of ['local', 'aws', 'gcp', 'azure', 'vault', 'v2beta1']) {
      expect([p, EXAMPLES.some((e) => e.argv.includes(`deploy/examples/config-${p}.yaml`))]).toEqual([
        p,
        true,
      ]);
    }
  });

  it.each(EXAMPLES.map((e) => [e.out, e] as const))('%s', async (_out, example) => {
    const cwd = process.cwd();
    process.chdir(root);
    try {
      const rendered = await runRender(example.argv);
      const file = join(root, example.out);
      if (update) {
        mkdirSync(dirname(file), { recursive: true });
        writeFileSync(file, rendered);
      }
      expect(existsSync(file)).toBe(true);
      expect(readFileSync(file, 'utf8')).toBe(rendered);
    } finally {
      process.chdir(cwd);
    }
  });
});
