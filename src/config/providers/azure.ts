import { z } from 'zod';
import type { FlagSpec } from '../fields.js';

// Placeholder: the azure provider's section is defined by its own issue.
export const azureSchema = z.strictObject({});
export type AzureConfig = z.infer<typeof azureSchema>;

export const azureFlags: FlagSpec[] = [];
