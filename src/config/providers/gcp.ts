import { z } from 'zod';
import type { FlagSpec } from '../fields.js';

// Placeholder: the gcp provider's section is defined by its own issue.
export const gcpSchema = z.strictObject({});
export type GcpConfig = z.infer<typeof gcpSchema>;

export const gcpFlags: FlagSpec[] = [];
