/**
 * CLI flags generated from the config schema: every field with `.meta({ flag: {...} })` becomes
 * one flag (and one KMS_PLUGIN_* env var). Name from the config path, type from the zod type,
 * help and placeholder from the metadata:
 *
 *   aws.attemptTimeout  →  --aws-attempt-timeout DURATION  /  KMS_PLUGIN_AWS_ATTEMPT_TIMEOUT
 */
import type { z } from 'zod';
import type { FlagSpec, FlagType } from './fields.js';
import { inputKinds, objectShape, unwrap, type Schema } from './reflect.js';

/** `attemptTimeout` → `attempt-timeout`. */
export function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** The flag type of a field: what a flag or env string is converted to before validation. */
export function flagType(field: Schema): FlagType {
  const kinds = inputKinds(field);
  if (kinds.has('boolean')) return 'boolean';
  if (kinds.has('array')) return 'list';
  if (kinds.has('string')) return 'string';
  if (kinds.has('number')) return 'number';
  return 'string';
}

/**
 * The flags of an object schema, in field order, nested objects included. `sections` names the
 * top-level fields that are provider sections: their flags' help starts with "<name> provider: ".
 */
export function schemaFlags(schema: z.ZodType, sections: readonly string[] = []): FlagSpec[] {
  const out: FlagSpec[] = [];
  const walk = (shape: Record<string, Schema>, prefix: string[], section: string | undefined): void => {
    for (const [key, field] of Object.entries(shape)) {
      const path = [...prefix, key];
      const within = section ?? (prefix.length === 0 && sections.includes(key) ? key : undefined);
      const nested = objectShape(unwrap(field).core);
      const meta = field.meta()?.flag;
      if (nested && !meta) {
        walk(nested, path, within);
        continue;
      }
      if (!meta) continue;
      const name = meta.name ?? path.map(kebab).join('-');
      const lead = within ? `${within} provider: ` : '';
      const type = flagType(field);
      const spec = (extra: Partial<FlagSpec>): FlagSpec => ({
        name,
        path,
        type,
        description: `${lead}${meta.help}`,
        ...(meta.arg !== undefined && type !== 'boolean' ? { arg: meta.arg } : {}),
        ...extra,
      });
      for (const old of meta.deprecatedNames ?? []) {
        out.push(
          spec({ name: old, description: `${lead}DEPRECATED alias of --${name}`, deprecatedFor: name }),
        );
      }
      out.push(spec({}));
    }
  };
  const root = objectShape(schema as Schema);
  if (!root) throw new Error('config schema is not an object');
  walk(root, [], undefined);
  return out;
}
