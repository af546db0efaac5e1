/**
 * A minimal structural view of zod 4 schemas (zod's public API has no reflection), shared by the
 * flag generator (flags.ts) and the docs generator (scripts/gen-config-docs.ts).
 */
import type { z } from 'zod';

export interface Def {
  type: string;
  innerType?: Schema;
  defaultValue?: unknown;
  shape?: Record<string, Schema>;
  options?: Schema[];
  entries?: Record<string, string | number>;
  element?: Schema;
  in?: Schema;
  out?: Schema;
  valueType?: Schema;
  values?: unknown[];
}
export type Schema = z.ZodType & { _zod: { def: Def } };

export function def(s: Schema): Def {
  return s._zod.def;
}

/** Strips optional/default/nullable wrappers; returns the core schema and what was stripped. */
export function unwrap(s: Schema): { core: Schema; optional: boolean; dflt?: unknown } {
  let core = s;
  let optional = false;
  let dflt: unknown;
  for (;;) {
    const d = def(core);
    if (d.type === 'pipe') {
      // e.g. union(...).default('0600').transform(...): the default sits on the pipe's input.
      const inner = unwrap(d.in as Schema);
      optional ||= inner.optional;
      if (dflt === undefined) dflt = inner.dflt;
      break;
    }
    if (d.type === 'optional' || d.type === 'nullable') optional = true;
    else if (d.type === 'default' || d.type === 'prefault') {
      optional = true;
      if (dflt === undefined)
        dflt = typeof d.defaultValue === 'function' ? (d.defaultValue as () => unknown)() : d.defaultValue;
    } else break;
    core = d.innerType as Schema;
  }
  return { core, optional, dflt };
}

/** The fields of an object schema (also behind optional/default wrappers and transforms). */
export function objectShape(s: Schema): Record<string, Schema> | undefined {
  const d = def(s);
  if (d.type === 'object') return d.shape;
  if (d.type === 'pipe') return objectShape(unwrap(d.in as Schema).core);
  if (d.type === 'optional' || d.type === 'default' || d.type === 'nullable' || d.type === 'prefault') {
    return objectShape(unwrap(s).core);
  }
  return undefined;
}

/** The kinds of value a schema accepts at its input (through wrappers, pipes and unions). */
export function inputKinds(s: Schema): Set<string> {
  const { core } = unwrap(s);
  const d = def(core);
  if (d.type === 'pipe') return inputKinds(d.in as Schema);
  if (d.type === 'union') return new Set((d.options ?? []).flatMap((o) => [...inputKinds(o)]));
  if (d.type === 'enum' || d.type === 'literal') return new Set(['string']);
  return new Set([d.type]);
}
