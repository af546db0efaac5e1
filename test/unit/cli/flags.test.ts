/** Every generated config flag is registered on commander, shows its env var, and reaches loadConfig by name. */
import { describe, expect, it } from '@jest/globals';
import { Command } from 'commander';
import { addConfigFlags, flagValues } from '../../../src/cli/flags.js';
import { envName } from '../../../src/config/fields.js';
import { allFlags } from '../../../src/config/schema.js';
import before from '../config/fixtures/flags-before-i14c.json' with { type: 'json' };

describe('addConfigFlags / flagValues', () => {
  const cmd = addConfigFlags(new Command('serve').exitOverride());
  const help = cmd.helpInformation();

  it('--help lists every flag main had, and every flag now, each with its env var', () => {
    for (const f of before.serve) {
      expect([f.name, help.includes(`--${f.name}`), help.includes(`[env ${f.env}]`)]).toEqual([
        f.name,
        true,
        true,
      ]);
    }
    for (const f of allFlags) {
      expect([f.name, help.includes(`--${f.name}`), help.includes(`[env ${envName(f)}]`)]).toEqual([
        f.name,
        true,
        true,
      ]);
    }
  });

  it('every flag parses and comes back under its flag name', () => {
    const argv = allFlags.flatMap((f) =>
      f.type === 'boolean' ? [`--${f.name}`] : [`--${f.name}`, `v-${f.name}`],
    );
    const parsed = addConfigFlags(new Command('serve').exitOverride()).parse(argv, { from: 'user' });
    const values = flagValues(parsed.opts());
    for (const f of allFlags) {
      expect([f.name, values[f.name]]).toEqual([f.name, f.type === 'boolean' ? 'true' : `v-${f.name}`]);
    }
  });
});
