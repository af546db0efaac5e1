/**
 * Loads configuration: defaults < YAML file < KMS_PLUGIN_* env < flags, then validates it against
 * the one schema. Every error names the field and says how to fix it.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { envName, type FlagSpec, type ProviderSection } from './fields.js';
import { PROVIDER_CATALOG } from './providers/index.js';
import { PROVIDERS, allFlags, configSchema, type Config } from './schema.js';

export interface LoadOptions {
  /** YAML (or JSON) config file. */
  file?: string;
  /** Parsed CLI flag values keyed by flag name (e.g. {"aws-region": "eu-west-1"}). */
  flags?: Record<string, unknown>;
  /** Environment to read KMS_PLUGIN_* from (process.env by default). */
  env?: NodeJS.ProcessEnv;
  /** Values applied under the file (e.g. the --dev defaults). */
  defaults?: Record<string, unknown>;
}

type Tree = Record<string, unknown>;

export function loadConfig(options: LoadOptions = {}): Config {
  const tree: Tree = structuredClone(options.defaults ?? {});
  if (options.file) deepMerge(tree, readConfigFile(options.file));
  const env = options.env ?? process.env;
  const warnings: string[] = [];
  const note = (flag: FlagSpec, source: string): void => {
    if (!flag.deprecatedFor) return;
    const instead = source.startsWith('--')
      ? `--${flag.deprecatedFor}`
      : `KMS_PLUGIN_${flag.deprecatedFor.toUpperCase().replace(/-/g, '_')}`;
    warnings.push(`config: ${source} is deprecated; use ${instead} (the same setting for every provider)`);
  };
  // Deprecated aliases first, so the current name wins when both are given.
  const ordered = [...allFlags].sort((a, b) => Number(!a.deprecatedFor) - Number(!b.deprecatedFor));
  for (const flag of ordered) {
    const raw = env[envName(flag)];
    if (raw !== undefined && raw !== '') {
      note(flag, envName(flag));
      setPath(tree, flag.path, convert(flag, raw, envName(flag)));
    }
  }
  for (const flag of ordered) {
    const value = options.flags?.[flag.name];
    if (value !== undefined) {
      note(flag, `--${flag.name}`);
      setPath(tree, flag.path, convert(flag, value, `--${flag.name}`));
    }
  }
  const config = validateConfig(tree);
  if (warnings.length > 0) deprecations.set(config, [...warnings, ...configDeprecations(config)]);
  return config;
}

export function validateConfig(tree: unknown): Config {
  const warnings = applyDeprecatedAliases(tree);
  const result = configSchema.safeParse(tree);
  if (!result.success) throw toConfigError(result.error);
  if (warnings.length > 0) deprecations.set(result.data, warnings);
  return result.data;
}

/**
 * Old field names still accepted, per provider section: `old → new` (from the provider catalog).
 * Every provider's common settings have the same names (`timeout`, `attemptTimeout`,
 * `maxAttempts`, `concurrency`, `caFile`); the names they had before log a deprecation warning.
 */
export const DEPRECATED_ALIASES: Readonly<Record<string, Readonly<Record<string, string>>>> =
  Object.fromEntries(
    PROVIDERS.flatMap((p) => {
      const { aliases } = PROVIDER_CATALOG[p] as ProviderSection;
      return aliases ? [[p, aliases]] : [];
    }),
  );

const deprecations = new WeakMap<object, string[]>();

/** Deprecation warnings for a config returned by loadConfig/validateConfig (log them at start-up). */
export function configDeprecations(config: Config): readonly string[] {
  return deprecations.get(config) ?? [];
}

/** Renames deprecated fields in place (top-level provider sections and decryptOnly entries). */
function applyDeprecatedAliases(tree: unknown): string[] {
  const warnings: string[] = [];
  if (!isPlainObject(tree)) return warnings;
  const fix = (holder: Tree, prefix: string): void => {
    for (const [section, aliases] of Object.entries(DEPRECATED_ALIASES)) {
      const node = holder[section];
      if (!isPlainObject(node)) continue;
      for (const [old, name] of Object.entries(aliases)) {
        // A dotted old name ("tls.caFile") is a field of a nested object of the section.
        const oldPath = old.split('.');
        const parent = oldPath
          .slice(0, -1)
          .reduce<unknown>((n, k) => (isPlainObject(n) ? n[k] : undefined), node);
        const key = oldPath[oldPath.length - 1];
        if (!isPlainObject(parent) || !(key in parent)) continue;
        const value = parent[key];
        delete parent[key];
        if (node[name] === undefined) node[name] = value;
        warnings.push(
          `config: ${prefix}${section}.${old} is deprecated; use ${prefix}${section}.${name} (the same setting for every provider)` +
            (node[name] !== value ? ` (${prefix}${section}.${name} is also set and wins)` : ''),
        );
      }
    }
  };
  fix(tree, '');
  const decryptOnly = tree.decryptOnly;
  if (Array.isArray(decryptOnly)) {
    decryptOnly.forEach((entry, i) => {
      if (isPlainObject(entry)) fix(entry, `decryptOnly[${i}].`);
    });
  }
  return warnings;
}

export function readConfigFile(file: string): Tree {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(
      '--config',
      `cannot read ${file} (${code ?? 'error'}): check the path and that the plugin's user can read it`,
    );
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError('--config', `${file} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError(
      '--config',
      `${file} must contain a YAML mapping (key: value lines) at the top level`,
    );
  }
  return doc as Tree;
}

/** Turns zod issues into one ConfigError listing every problem as `field: message`. */
export function toConfigError(error: z.ZodError): ConfigError {
  const lines = error.issues.map((issue) => {
    const field = issue.path.length ? issue.path.map(String).join('.') : '(top level)';
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') {
      message = `unknown field(s) ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}: remove or fix the spelling (see README, Configuration)`;
    } else if (issue.code === 'invalid_type' && /received undefined/i.test(message)) {
      message = `is required: ${message}`;
    }
    return { field, message };
  });
  const first = lines[0] ?? { field: '(config)', message: 'invalid' };
  const err = new ConfigError(first.field, lines.map((l) => `${l.field}: ${l.message}`).join('; '));
  err.message = `invalid configuration:\n${lines.map((l) => `  - ${l.field}: ${l.message}`).join('\n')}`;
  return err;
}

function convert(flag: FlagSpec, value: unknown, source: string): unknown {
  if (typeof value !== 'string') return value;
  switch (flag.type) {
    case 'boolean':
      if (!['true', 'false', '1', '0', ''].includes(value)) {
        throw new ConfigError(source, `expected true or false; got ${JSON.stringify(value)}`);
      }
      return value === 'true' || value === '1' || value === '';
    case 'number': {
      const n = Number(value);
      if (!Number.isFinite(n))
        throw new ConfigError(source, `expected a number; got ${JSON.stringify(value)}`);
      return n;
    }
    case 'list':
      return value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    default:
      return value;
  }
}

function setPath(tree: Tree, path: string[], value: unknown): void {
  let node = tree;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Tree;
  }
  node[path[path.length - 1]] = value;
}

function deepMerge(target: Tree, source: Tree): void {
  for (const [k, v] of Object.entries(source)) {
    const t = target[k];
    if (isPlainObject(v) && isPlainObject(t)) deepMerge(t, v);
    else target[k] = v;
  }
}

function isPlainObject(v: unknown): v is Tree {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
