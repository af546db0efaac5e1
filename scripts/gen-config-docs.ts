/**
 * Generates docs/configuration.md, the README flag table and the config table of every
 * docs/providers/<provider>.md (between `<!-- config:start -->` and `<!-- config:end -->`) from the
 * config schema (src/config/schema.ts and the provider catalog in src/config/providers/) and the
 * flags generated from it: every field with its type, default, flag, env var and its description
 * (`.meta({ description })` or the doc comment written next to it in the schema source).
 *
 *   npx tsx scripts/gen-config-docs.ts           # rewrite docs/configuration.md
 *   npx tsx scripts/gen-config-docs.ts --check   # exit 1 if the checked-in file is stale
 *
 * test/deploy/config-docs.test.ts runs the same check.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { envName, type FlagSpec } from '../src/config/fields.js';
import { DEPRECATED_ALIASES } from '../src/config/load.js';
import { def, objectShape, unwrap, type Schema } from '../src/config/reflect.js';
import { PROVIDERS, allFlags, configSchema, type ProviderName } from '../src/config/schema.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const OUTPUT = `${ROOT}docs/configuration.md`;

interface Row {
  path: string[];
  type: string;
  default: string;
  required: boolean;
  description: string;
  flag?: FlagSpec;
}

/** Doc comments (`/** ... *\/` right above `name:`), per source file, first occurrence wins. */
function docComments(file: string): Map<string, string> {
  const text = readFileSync(`${ROOT}${file}`, 'utf8');
  const out = new Map<string, string>();
  for (const m of text.matchAll(/\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*\n\s*([A-Za-z0-9_]+)\s*[:,]/g)) {
    const body = m[1]
      .split('\n')
      .map((l) => l.replace(/^\s*\*\s?/, '').trim())
      .filter(Boolean)
      .join(' ');
    if (!out.has(m[2])) out.set(m[2], body);
  }
  return out;
}

/** A duration field turns "1s" into 1000 (or "1m", "1h" where a minimum/maximum rules one out). */
function isDuration(s: Schema): boolean {
  return (
    [
      ['1s', 1000],
      ['1m', 60_000],
      ['1h', 3_600_000],
    ] as const
  ).some(([text, ms]) => {
    const r = s.safeParse(text);
    return r.success && r.data === ms;
  });
}

function formatMs(ms: number): string {
  const units: Array<[string, number]> = [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
    ['ms', 1],
  ];
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const [u, n] of units) {
    if (rest >= n) {
      out += `${Math.floor(rest / n)}${u}`;
      rest %= n;
    }
  }
  return out;
}

function typeLabel(s: Schema): string {
  if (isDuration(s)) return 'duration';
  const d = def(s);
  switch (d.type) {
    case 'string':
      return 'string';
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'enum':
      return Object.values(d.entries ?? {})
        .map((v) => `\`${String(v)}\``)
        .join(' \\| ');
    case 'literal':
      return (d.values ?? []).map((v) => `\`${String(v)}\``).join(' \\| ');
    case 'array':
      return `list of ${typeLabel(unwrap(d.element as Schema).core)}`;
    case 'record':
      return 'map of string';
    case 'pipe':
      return typeLabel(unwrap(d.in as Schema).core);
    case 'union': {
      const labels = [...new Set((d.options ?? []).map((o) => typeLabel(unwrap(o).core)))];
      if (labels.includes('boolean')) return 'boolean';
      return labels.join(' or ');
    }
    case 'object':
      return 'object';
    default:
      return d.type;
  }
}

function formatDefault(value: unknown, duration: boolean): string {
  if (value === undefined) return '';
  if (duration && typeof value === 'number') return `\`${formatMs(value)}\``;
  if (typeof value === 'string') return value === '' ? '`""`' : `\`${value}\``;
  if (Array.isArray(value) && value.length === 0) return '`[]`';
  if (typeof value === 'object') return '';
  return `\`${String(value)}\``;
}

function collect(
  shape: Record<string, Schema>,
  prefix: string[],
  docs: Map<string, string>,
  flags: Map<string, FlagSpec>,
  rows: Row[],
): void {
  for (const [key, field] of Object.entries(shape)) {
    const path = [...prefix, key];
    const { core, optional, dflt } = unwrap(field);
    const nested = objectShape(core);
    if (nested && !(prefix.length === 0 && (PROVIDERS as readonly string[]).includes(key))) {
      collect(nested, path, docs, flags, rows);
      continue;
    }
    if (nested) continue; // provider sections get their own tables
    const duration = isDuration(core);
    rows.push({
      path,
      type: typeLabel(core),
      default: formatDefault(dflt, duration || (typeof dflt === 'number' && isDuration(field))),
      required: !optional,
      description: field.meta()?.description ?? docs.get(key) ?? '',
      flag: flags.get(path.join('.')),
    });
  }
}

/** One table cell: pipes escaped, and `<...>` escaped outside code spans (where it would be HTML). */
function cell(text: string): string {
  return text
    .replace(/\n/g, ' ')
    .split('`')
    .map((part, i) => (i % 2 === 0 ? part.replace(/</g, '&lt;').replace(/>/g, '&gt;') : part))
    .join('`')
    .replace(/\|/g, '\\|');
}

function table(rows: Row[]): string {
  const lines = ['| Field | Type | Default | Flag / env | Description |', '|---|---|---|---|---|'];
  for (const r of rows) {
    const aliases = allFlags.filter(
      (f) => f.deprecatedFor !== undefined && f.path.join('.') === r.path.join('.'),
    );
    const flag = r.flag
      ? [r.flag, ...aliases]
          .map((f) => `\`--${f.name}\`<br>\`${envName(f)}\`${f.deprecatedFor ? ' (deprecated)' : ''}`)
          .join('<br>')
      : '';
    const dflt = r.default || (r.required ? '**required**' : '');
    lines.push(`| \`${r.path.join('.')}\` | ${r.type} | ${dflt} | ${flag} | ${cell(r.description)} |`);
  }
  return lines.join('\n');
}

export function generateConfigDocs(): string {
  // The current flag for each path; deprecated aliases are listed next to it.
  const flags = new Map(allFlags.filter((f) => !f.deprecatedFor).map((f) => [f.path.join('.'), f]));
  const rootShape = objectShape(configSchema as unknown as Schema);
  if (!rootShape) throw new Error('config schema is not an object');
  const coreRows: Row[] = [];
  collect(rootShape, [], docComments('src/config/schema.ts'), flags, coreRows);

  const parts: string[] = [
    '# Configuration reference',
    '',
    '<!-- Generated by `npx tsx scripts/gen-config-docs.ts` from src/config/schema.ts and the provider catalog',
    '     (src/config/providers/). Do not edit by hand: test/deploy/config-docs.test.ts fails when this file is stale. -->',
    '',
    'One YAML file (`--config FILE`), overridden by environment variables, overridden by flags:',
    '**flag > `KMS_PLUGIN_*` env > file > defaults**. Every flag has an env var: `--aws-region` is',
    '`KMS_PLUGIN_AWS_REGION`. Durations are strings like `250ms`, `60s`, `5m`, `24h`, `7d` or `1h30m` (a bare',
    'number means seconds). Unknown fields are errors, and every error names the field and the fix.',
    '',
    'Check a config without starting anything: `k8s-kms-plugin render encryption-config --config FILE`',
    'loads and validates it exactly like `serve` does. The deployment options of `render` (`--image`,',
    '`--name`, `--timeout`, `--resources`, ...) are listed by `k8s-kms-plugin render --help` and in',
    '[deploy/README.md](../deploy/README.md).',
    '',
    '## Plugin',
    '',
    table(coreRows),
    '',
  ];
  for (const p of PROVIDERS) {
    const section = rootShape[p];
    const shape = section ? objectShape(unwrap(section).core) : undefined;
    parts.push(`## \`${p}\` provider`, '');
    parts.push(`Used when \`provider: ${p}\` (or in a \`decryptOnly\` entry with \`provider: ${p}\`).`, '');
    if (!shape || Object.keys(shape).length === 0) {
      parts.push('_No fields yet._', '');
      continue;
    }
    const rows: Row[] = [];
    collect(shape, [p], docComments(`src/config/providers/${p}.ts`), flags, rows);
    parts.push(table(rows), '');
  }
  parts.push(
    '## Deprecated names',
    '',
    'Old names that still work. Each use logs a warning at start-up naming the new one; when both are',
    'given, the new name wins. The same setting has the same name in every provider.',
    '',
    '| Old name | Use instead |',
    '|---|---|',
  );
  for (const [section, aliases] of Object.entries(DEPRECATED_ALIASES)) {
    for (const [old, name] of Object.entries(aliases)) {
      parts.push(`| \`${section}.${old}\` | \`${section}.${name}\` |`);
    }
  }
  for (const f of allFlags.filter((x) => x.deprecatedFor !== undefined)) {
    parts.push(
      `| \`--${f.name}\`, \`${envName(f)}\` | \`--${f.deprecatedFor}\`, \`KMS_PLUGIN_${(f.deprecatedFor ?? '').toUpperCase().replace(/-/g, '_')}\` |`,
    );
  }
  parts.push('');
  const documented = new Set(allFlags.map((f) => f.path.join('.')));
  parts.push('## All flags', '', '| Flag | Env | Config field | Description |', '|---|---|---|---|');
  for (const f of [...allFlags].sort((a, b) => a.name.localeCompare(b.name))) {
    parts.push(
      `| \`--${f.name}${f.type === 'boolean' ? '' : ` ${f.arg ?? 'VALUE'}`}\` | \`${envName(f)}\` | \`${f.path.join('.')}\` | ${cell(f.description)} |`,
    );
  }
  parts.push('', `${documented.size} flags. \`--config FILE\` selects the file itself.`, '');
  return parts.join('\n');
}

const CONFIG_START = '<!-- config:start -->';
const CONFIG_END = '<!-- config:end -->';

/** docs/providers/<provider>.md */
export function providerDoc(provider: string): string {
  return `${ROOT}docs/providers/${provider}.md`;
}

/** The field table of one provider's section, for its page under docs/providers/. */
export function generateProviderTable(provider: ProviderName): string {
  const rootShape = objectShape(configSchema as unknown as Schema);
  const section = rootShape?.[provider];
  const shape = section ? objectShape(unwrap(section).core) : undefined;
  if (!shape) throw new Error(`no ${provider} section in the config schema`);
  const flags = new Map(allFlags.filter((f) => !f.deprecatedFor).map((f) => [f.path.join('.'), f]));
  const rows: Row[] = [];
  collect(shape, [provider], docComments(`src/config/providers/${provider}.ts`), flags, rows);
  const lines = [
    CONFIG_START,
    `<!-- Generated by \`npx tsx scripts/gen-config-docs.ts\` from src/config/providers/${provider}.ts; test/deploy/config-docs.test.ts keeps it in step. -->`,
    '',
    '| Field | Flag / env | Default | Meaning |',
    '|---|---|---|---|',
  ];
  for (const r of rows) {
    const flag = r.flag ? `\`--${r.flag.name}\`<br>\`${envName(r.flag)}\`` : '—';
    const dflt = r.default || (r.required ? '**required**' : '');
    lines.push(`| \`${r.path.slice(1).join('.')}\` | ${flag} | ${dflt} | ${cell(r.description)} |`);
  }
  const old = [
    ...Object.entries(DEPRECATED_ALIASES[provider] ?? {}),
    ...allFlags
      .filter((f) => f.deprecatedFor !== undefined && f.path[0] === provider)
      .map((f) => [`--${f.name}`, `--${f.deprecatedFor}`]),
  ];
  if (old.length > 0) {
    lines.push(
      '',
      `Old names, still accepted with a deprecation warning: ${old.map(([o, n]) => `\`${o}\` (use \`${n}\`)`).join(', ')}.`,
    );
  }
  lines.push('', CONFIG_END);
  return lines.join('\n');
}

/** A provider page with its config table replaced by the generated one. */
export function providerDocWithTable(provider: ProviderName, text: string): string {
  const start = text.indexOf(CONFIG_START);
  const end = text.indexOf(CONFIG_END);
  if (start < 0 || end < start) {
    throw new Error(`docs/providers/${provider}.md lacks the ${CONFIG_START} / ${CONFIG_END} markers`);
  }
  return text.slice(0, start) + generateProviderTable(provider) + text.slice(end + CONFIG_END.length);
}

export const README = `${ROOT}README.md`;
const FLAGS_START = '<!-- flags:start -->';
const FLAGS_END = '<!-- flags:end -->';

/** The README's flag table: every serve flag, its env var and the config field it sets. */
export function generateReadmeFlags(): string {
  const rows = allFlags.map((f) => {
    const flag = f.type === 'boolean' ? `--${f.name}` : `--${f.name} ${f.arg ?? 'VALUE'}`;
    return `| \`${flag}\` | \`${envName(f)}\` | \`${f.path.join('.')}\` | ${f.description.replace(/\|/g, '\\|')} |`;
  });
  return [
    FLAGS_START,
    '<!-- Generated by `npx tsx scripts/gen-config-docs.ts`; test/deploy/config-docs.test.ts keeps it in step. -->',
    '',
    '| flag | env | config field | meaning |',
    '| --- | --- | --- | --- |',
    '| `--config FILE` | | | the YAML config file |',
    '| `--dev` | | | development defaults (`serve` only): local KEK under `./.dev`, socket `unix:///tmp/k8s-kms-plugin/kms.sock` |',
    ...rows,
    '',
    FLAGS_END,
  ].join('\n');
}

/** README.md with its flag block replaced by the generated one. */
export function readmeWithFlags(readme: string): string {
  const start = readme.indexOf(FLAGS_START);
  const end = readme.indexOf(FLAGS_END);
  if (start < 0 || end < start) throw new Error(`README.md lacks the ${FLAGS_START} / ${FLAGS_END} markers`);
  return readme.slice(0, start) + generateReadmeFlags() + readme.slice(end + FLAGS_END.length);
}

const invokedDirectly =
  process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (invokedDirectly) {
  const text = generateConfigDocs();
  const readme = readFileSync(README, 'utf8');
  const newReadme = readmeWithFlags(readme);
  const pages = PROVIDERS.map((p) => {
    const current = readFileSync(providerDoc(p), 'utf8');
    return { file: providerDoc(p), current, next: providerDocWithTable(p, current) };
  });
  if (process.argv.includes('--check')) {
    const stalePages = pages.filter((pg) => pg.current !== pg.next);
    if (stalePages.length > 0) {
      console.error(
        `${stalePages.map((pg) => pg.file).join(', ')}: config table stale: run \`npx tsx scripts/gen-config-docs.ts\``,
      );
      process.exit(1);
    }
    let current = '';
    try {
      current = readFileSync(OUTPUT, 'utf8');
    } catch {
      // missing counts as stale
    }
    if (current !== text || readme !== newReadme) {
      console.error(
        'docs/configuration.md or the README flag table is stale: run `npx tsx scripts/gen-config-docs.ts`',
      );
      process.exit(1);
    }
  } else {
    writeFileSync(OUTPUT, text);
    writeFileSync(README, newReadme);
    for (const pg of pages) if (pg.current !== pg.next) writeFileSync(pg.file, pg.next);
  }
}
