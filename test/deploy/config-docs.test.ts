/** docs/configuration.md is generated from the schema and flags; it must not be stale. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import {
  OUTPUT,
  README,
  generateConfigDocs,
  providerDoc,
  providerDocWithTable,
  readmeWithFlags,
} from '../../scripts/gen-config-docs.js';
import { DEPRECATED_ALIASES } from '../../src/config/load.js';
import { PROVIDERS, allFlags, providerFlags } from '../../src/config/schema.js';

describe('docs/configuration.md', () => {
  const text = generateConfigDocs();

  it('matches the generator (run `npx tsx scripts/gen-config-docs.ts` after changing the schema or flags)', () => {
    expect(readFileSync(OUTPUT, 'utf8')).toBe(text);
  });

  it('README.md lists every flag (run `npx tsx scripts/gen-config-docs.ts` after changing flags)', () => {
    const readme = readFileSync(README, 'utf8');
    expect(readme).toBe(readmeWithFlags(readme));
    for (const f of allFlags) expect([f.name, readme.includes(`\`--${f.name}`)]).toEqual([f.name, true]);
  });

  it('documents every flag with its env var, and the core fields with defaults', () => {
    for (const f of allFlags) {
      expect([f.name, text.includes(`\`--${f.name}\``)]).toEqual([f.name, true]);
      expect([f.name, text.includes(`KMS_PLUGIN_${f.name.toUpperCase().replace(/-/g, '_')}`)]).toEqual([
        f.name,
        true,
      ]);
    }
    expect(text).toMatch(/\| `healthAddr` \| string \| `127\.0\.0\.1:8086` \|/);
    expect(text).toMatch(/\| `probe\.interval` \| duration \| `1m` \|/);
    expect(text).toMatch(/\| `local\.keyFile` \| string \| \*\*required\*\* \|/);
  });

  it('lists every deprecated name with the one to use instead', () => {
    for (const [section, aliases] of Object.entries(DEPRECATED_ALIASES)) {
      for (const [old, name] of Object.entries(aliases)) {
        expect(text).toContain(`| \`${section}.${old}\` | \`${section}.${name}\` |`);
      }
    }
    for (const f of allFlags.filter((x) => x.deprecatedFor)) {
      expect(text).toContain(`| \`--${f.name}\`, \`KMS_PLUGIN_`);
    }
  });
});

describe('docs/providers/*.md config tables', () => {
  it.each([...PROVIDERS])(
    '%s: the table matches the schema (run `npx tsx scripts/gen-config-docs.ts` after changing it)',
    (p) => {
      const page = readFileSync(providerDoc(p), 'utf8');
      expect(page).toBe(providerDocWithTable(p, page));
      for (const f of providerFlags(p).filter((x) => !x.deprecatedFor)) {
        expect([f.name, page.includes(`\`--${f.name}\``)]).toEqual([f.name, true]);
      }
      for (const old of Object.keys(DEPRECATED_ALIASES[p] ?? {})) expect(page).toContain(`\`${old}\` (use`);
    },
  );
});
