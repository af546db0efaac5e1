/** Registers the config flag table (src/config/schema.ts allFlags) on a commander command. */
import { Option, type Command } from 'commander';
import { envName, type FlagSpec } from '../config/fields.js';
import { allFlags } from '../config/schema.js';

export function addConfigFlags(cmd: Command, flags: FlagSpec[] = allFlags): Command {
  cmd.option('--config <FILE>', 'YAML config file (flags and KMS_PLUGIN_* env override it)');
  for (const f of flags) {
    const spec = f.type === 'boolean' ? `--${f.name} [BOOL]` : `--${f.name} <${f.arg ?? 'VALUE'}>`;
    cmd.addOption(new Option(spec, `${f.description} [env ${envName(f)}]`));
  }
  return cmd;
}

/** Collects the flag values commander parsed, keyed by flag name (e.g. "aws-region"). */
export function flagValues(
  opts: Record<string, unknown>,
  flags: FlagSpec[] = allFlags,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of flags) {
    const v = opts[camel(f.name)];
    if (v === undefined) continue;
    out[f.name] = f.type === 'boolean' && v === true ? 'true' : v;
  }
  return out;
}

function camel(name: string): string {
  return name.replace(/-([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}
