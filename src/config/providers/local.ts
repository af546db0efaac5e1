import { z } from 'zod';
import { bool, nonEmpty, type ProviderSection } from '../fields.js';

export const localSchema = z.strictObject({
  /** JSON key file with one or more versioned 256-bit keys (create with `k8s-kms-plugin keygen`). */
  keyFile: nonEmpty(
    'local.keyFile (the path of the key file made by `k8s-kms-plugin keygen --out PATH`)',
  ).meta({
    flag: { arg: 'PATH', help: 'key file (see `keygen`)' },
  }),
  /** Accept a key file readable by group or others. Never do this outside development. */
  allowInsecurePermissions: bool.default(false).meta({
    flag: { help: 'accept a key file readable by group/others (development only)' },
  }),
  /** Create the key file on first start if it is missing (config only; `--dev` sets it). */
  createIfMissing: bool.default(false),
  /** Watch the key file and pick up `rotate` without a restart (config only). */
  watch: bool.default(true),
});
export type LocalConfig = z.infer<typeof localSchema>;

export const localSection = { schema: localSchema } satisfies ProviderSection;
