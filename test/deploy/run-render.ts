/** Runs `k8s-kms-plugin render ...` in-process through commander, with KMS_PLUGIN_* env cleared. */
import { Command } from 'commander';
import { registerRender } from '../../src/cli/render.js';

export async function runRender(argv: string[], env: Record<string, string> = {}): Promise<string> {
  let out = '';
  const program = new Command('k8s-kms-plugin')
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  registerRender(program, { write: (s: string) => (out += s) });
  const saved: Record<string, string | undefined> = {};
  for (const k of Object.keys(process.env)) if (k.startsWith('KMS_PLUGIN_')) saved[k] = process.env[k];
  for (const k of Object.keys(saved)) delete process.env[k];
  Object.assign(process.env, env);
  try {
    await program.parseAsync(argv, { from: 'user' });
  } finally {
    for (const k of Object.keys(env)) delete process.env[k];
    Object.assign(process.env, saved);
  }
  return out;
}
