/**
 * Flags are generated from the schema (src/config/flags.ts). The fixture pins every flag that
 * main's hand-written tables had before (name, env var, config path, type, deprecated alias), so
 * nothing disappears or changes meaning silently; and the common settings have the same names in
 * every remote provider.
 */
import { describe, expect, it } from '@jest/globals';
import { envName } from '../../../src/config/fields.js';
import { kebab, schemaFlags } from '../../../src/config/flags.js';
import { configDeprecations, DEPRECATED_ALIASES, loadConfig } from '../../../src/config/load.js';
import { PROVIDER_CATALOG } from '../../../src/config/providers/index.js';
import { PROVIDERS, allFlags, configSchema, providerFlags } from '../../../src/config/schema.js';
import { PROVIDER_KINDS } from '../../../src/kek/types.js';
import { z } from 'zod';
import before from './fixtures/flags-before-i14c.json' with { type: 'json' };

/** Flags whose config path moved on purpose (issue 14: common names); the old path is an alias. */
const MOVED: Record<string, { from: string; to: string }> = {
  'vault-ca-file': { from: 'vault.tls.caFile', to: 'vault.caFile' },
};

describe('generated flags keep every flag main had', () => {
  const byName = new Map(allFlags.map((f) => [f.name, f]));

  it.each(before.serve.map((f) => [f.name, f] as const))('--%s', (name, old) => {
    const now = byName.get(name);
    expect(now).toBeDefined();
    if (!now) return;
    expect(envName(now)).toBe(old.env);
    expect(now.type).toBe(old.type);
    expect(now.deprecatedFor).toBe((old as { deprecatedFor?: string }).deprecatedFor);
    const moved = MOVED[name];
    if (moved) {
      expect(old.path).toBe(moved.from);
      expect(now.path.join('.')).toBe(moved.to);
      const [section, ...rest] = moved.from.split('.');
      expect(DEPRECATED_ALIASES[section]?.[rest.join('.')]).toBe(moved.to.split('.').slice(1).join('.'));
    } else {
      expect(now.path.join('.')).toBe(old.path);
    }
  });

  it('the fixture is main’s full list (78 flags), and names are unique', () => {
    expect(before.serve).toHaveLength(78);
    expect(new Set(allFlags.map((f) => f.name)).size).toBe(allFlags.length);
  });

  it('rotate --provider pkcs11 still takes every --pkcs11-* flag it took', () => {
    const names = providerFlags('pkcs11').map((f) => f.name);
    for (const n of before.rotatePkcs11) expect(names).toContain(n);
    expect(names.every((n) => n.startsWith('pkcs11-'))).toBe(true);
  });

  it('deprecated flag names point at a current flag of the same path', () => {
    const deprecated = allFlags.filter((f) => f.deprecatedFor !== undefined);
    expect(deprecated.map((f) => f.name).sort()).toEqual(['azure-request-timeout', 'gcp-call-timeout']);
    for (const f of deprecated) {
      const target = byName.get(f.deprecatedFor ?? '');
      expect(target?.path).toEqual(f.path);
      expect(target?.deprecatedFor).toBeUndefined();
    }
  });
});

describe('the generation rule', () => {
  it('derives the name from the path, the type from zod, the help from .meta()', () => {
    const schema = z.strictObject({
      top: z
        .string()
        .optional()
        .meta({ flag: { arg: 'X', help: 'a string' } }),
      nested: z.strictObject({
        attemptTimeout: z.union([z.string(), z.number()]).meta({ flag: { arg: 'D', help: 'd' } }),
        on: z.union([z.boolean(), z.enum(['true', 'false'])]).meta({ flag: { arg: 'B', help: 'b' } }),
        n: z.coerce
          .number()
          .default(1)
          .meta({ flag: { help: 'n' } }),
        list: z
          .array(z.string())
          .default([])
          .meta({ flag: { help: 'l', name: 'the-list' } }),
        noFlag: z.string().optional(),
      }),
      p: z
        .strictObject({
          keyName: z.string().meta({ flag: { help: 'key', deprecatedNames: ['p-old-key'] } }),
        })
        .optional(),
    });
    expect(schemaFlags(schema, ['p'])).toEqual([
      { name: 'top', path: ['top'], type: 'string', description: 'a string', arg: 'X' },
      {
        name: 'nested-attempt-timeout',
        path: ['nested', 'attemptTimeout'],
        type: 'string',
        description: 'd',
        arg: 'D',
      },
      { name: 'nested-on', path: ['nested', 'on'], type: 'boolean', description: 'b' },
      { name: 'nested-n', path: ['nested', 'n'], type: 'number', description: 'n' },
      { name: 'the-list', path: ['nested', 'list'], type: 'list', description: 'l' },
      {
        name: 'p-old-key',
        path: ['p', 'keyName'],
        type: 'string',
        description: 'p provider: DEPRECATED alias of --p-key-name',
        deprecatedFor: 'p-key-name',
      },
      { name: 'p-key-name', path: ['p', 'keyName'], type: 'string', description: 'p provider: key' },
    ]);
    expect(kebab('disableChallengeResourceVerification')).toBe('disable-challenge-resource-verification');
  });

  it('every provider flag starts with its provider name and says which provider it belongs to', () => {
    for (const p of PROVIDERS) {
      for (const f of providerFlags(p)) {
        expect([f.name, f.name.startsWith(`${p}-`)]).toEqual([f.name, true]);
        expect(f.description.startsWith(`${p} provider: `)).toBe(true);
      }
    }
  });
});

describe('one provider catalog', () => {
  it('the provider enum, the schema sections and the KEK kinds all come from the catalog', () => {
    expect(PROVIDERS).toEqual(Object.keys(PROVIDER_CATALOG));
    expect(PROVIDER_KINDS).toEqual(PROVIDERS);
    const shape = configSchema.shape as Record<string, unknown>;
    for (const p of PROVIDERS) expect(shape[p]).toBeDefined();
    expect(configSchema.shape.provider.safeParse('nope').success).toBe(false);
    for (const p of PROVIDERS) expect(configSchema.shape.provider.safeParse(p).success).toBe(true);
  });
});

/** The common settings of every remote provider, with the same names (issue 14). */
const COMMON: Record<string, string[]> = {
  aws: ['timeout', 'attemptTimeout', 'maxAttempts', 'concurrency', 'caFile'],
  gcp: ['timeout', 'attemptTimeout', 'maxAttempts', 'concurrency', 'caFile'],
  azure: ['timeout', 'attemptTimeout', 'maxAttempts', 'concurrency', 'caFile'],
  vault: ['timeout', 'attemptTimeout', 'maxAttempts', 'concurrency', 'caFile'],
  pkcs11: ['timeout', 'attemptTimeout', 'maxAttempts', 'concurrency'],
};

const MINIMAL: Record<string, Record<string, string>> = {
  aws: { 'aws-key-id': 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab' },
  gcp: { 'gcp-key-name': 'projects/my-project/locations/europe-west1/keyRings/k8s/cryptoKeys/etcd' },
  azure: { 'azure-vault-url': 'https://myvault.vault.azure.net', 'azure-key-name': 'k' },
  vault: {
    'vault-address': 'https://vault:8200',
    'vault-key-name': 'kek',
    'vault-auth-method': 'token',
    'vault-token-file': '/t',
  },
  pkcs11: {
    'pkcs11-module': '/usr/lib/softhsm/libsofthsm2.so',
    'pkcs11-token-label': 't',
    'pkcs11-pin-file': '/etc/pin',
    'pkcs11-key-label': 'kek',
  },
};

describe('common settings have common names', () => {
  it.each(Object.entries(COMMON))('%s', (p, fields) => {
    for (const field of fields) {
      const flag = allFlags.find((f) => f.path.join('.') === `${p}.${field}` && !f.deprecatedFor);
      expect([field, flag?.name]).toEqual([field, `${p}-${kebab(field)}`]);
    }
    const values: Record<string, string> = {
      timeout: '7s',
      attemptTimeout: '1500ms',
      maxAttempts: '2',
      concurrency: '3',
      caFile: '/etc/ca.pem',
    };
    const flags = Object.fromEntries(fields.map((f) => [`${p}-${kebab(f)}`, values[f]]));
    const c = loadConfig({ env: {}, flags: { provider: p, ...MINIMAL[p], ...flags } });
    const section = (c as unknown as Record<string, Record<string, unknown>>)[p];
    const expected: Record<string, unknown> = {
      timeout: 7000,
      attemptTimeout: 1500,
      maxAttempts: 2,
      concurrency: 3,
      caFile: '/etc/ca.pem',
    };
    for (const f of fields) expect([f, section[f]]).toEqual([f, expected[f]]);
    expect(configDeprecations(c)).toEqual([]);
  });

  it('defaults keep what each provider did before (RemoteCaller: 10 s, 4 attempts, 16 calls; pkcs11: 4 sessions)', () => {
    for (const p of Object.keys(COMMON)) {
      const c = loadConfig({ env: {}, flags: { provider: p, ...MINIMAL[p] } });
      const section = (c as unknown as Record<string, Record<string, unknown>>)[p];
      expect([p, section.timeout, section.maxAttempts, section.attemptTimeout]).toEqual([
        p,
        10_000,
        4,
        undefined,
      ]);
      expect([p, section.concurrency]).toEqual([p, p === 'pkcs11' ? 4 : 16]);
    }
  });

  it('vault.tls.caFile and pkcs11.sessions still work, with a warning naming the new field', () => {
    const v = loadConfig({
      env: {},
      flags: { provider: 'vault', ...MINIMAL.vault },
      defaults: { vault: { tls: { caFile: '/old/ca.pem', serverName: 'vault.internal' } } },
    });
    expect(v.vault?.caFile).toBe('/old/ca.pem');
    expect(v.vault?.tls).toEqual({ serverName: 'vault.internal' });
    expect(configDeprecations(v).join('\n')).toMatch(/vault\.tls\.caFile is deprecated; use vault\.caFile/);

    const both = loadConfig({
      env: {},
      flags: { provider: 'vault', ...MINIMAL.vault, 'vault-ca-file': '/new/ca.pem' },
      defaults: { vault: { tls: { caFile: '/old/ca.pem' } } },
    });
    expect(both.vault?.caFile).toBe('/new/ca.pem');
    expect(configDeprecations(both).join('\n')).toMatch(/vault\.caFile is also set and wins/);

    const k = loadConfig({
      env: {},
      flags: { provider: 'local', 'local-key-file': '/k.json' },
      defaults: {
        decryptOnly: [
          {
            provider: 'pkcs11',
            pkcs11: {
              modulePath: '/usr/lib/softhsm/libsofthsm2.so',
              tokenLabel: 't',
              pinFile: '/etc/pin',
              keyLabel: 'kek',
              sessions: 8,
            },
          },
        ],
      },
    });
    expect(k.decryptOnly[0].pkcs11?.concurrency).toBe(8);
    expect(configDeprecations(k).join('\n')).toMatch(
      /decryptOnly\[0\]\.pkcs11\.sessions is deprecated; use decryptOnly\[0\]\.pkcs11\.concurrency/,
    );
  });
});
