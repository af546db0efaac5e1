import { z } from 'zod';
import type { FlagSpec } from '../fields.js';

// Placeholder: the aws provider's section is defined by its own issue.
export const awsSchema = z.strictObject({});
export type AwsConfig = z.infer<typeof awsSchema>;

export const awsFlags: FlagSpec[] = [];
