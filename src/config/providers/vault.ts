import { z } from 'zod';
import type { FlagSpec } from '../fields.js';

// Placeholder: the vault provider's section is defined by its own issue.
export const vaultSchema = z.strictObject({});
export type VaultConfig = z.infer<typeof vaultSchema>;

export const vaultFlags: FlagSpec[] = [];
