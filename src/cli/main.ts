#!/usr/bin/env node
/**
 * k8s-kms-plugin command line. Nothing imports this module.
 *
 *   serve (default)   run the plugin
 *   keygen            create a local key file
 *   probe             check a running plugin like kube-apiserver would
 *   render            print deployment files from a config
 *   version           print versions
 *   rotate            add / retire local key versions
 *   inspect           show what protects an etcd value (no secrets)
 *   decrypt-etcd-value  break-glass decryption of an etcd value (disaster recovery)
 *   census            count etcd objects per resource × protection (read-only)
 *   reencrypt         rewrite objects through the Kubernetes API under the current key
 */
import { Command, CommanderError } from 'commander';
import { ConfigError, PluginError } from '../errors.js';
import { addConfigFlags, flagValues } from './flags.js';
import { keygen } from './keygen.js';
import { emptyPreflightReport, runDoctor, type PreflightReport } from './doctor.js';
import { probeLoadedVersions, runProbe, type ProbeStep } from './probe.js';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../observability/logger.js';
import { registerRender } from './render.js';
import { serve } from './serve.js';
import { versionInfo } from './version.js';
import { parseDuration } from '../config/fields.js';
import { registerRotate } from './rotate.js';
import { registerInspect } from './inspect.js';
import { registerDecryptEtcdValue } from './decrypt-etcd-value.js';
import { registerCensus } from './census/command.js';
import { registerReencrypt } from './reencrypt.js';

const program = new Command();
program
  .name('k8s-kms-plugin')
  .description('KMS v2 encryption provider plugin for kube-apiserver')
  .showHelpAfterError()
  .exitOverride();

addConfigFlags(
  program
    .command('serve', { isDefault: true })
    .description('run the plugin (the default command)')
    .option(
      '--dev',
      'development defaults: local KEK created under ./.dev, socket unix:///tmp/k8s-kms-plugin/kms.sock',
    ),
).action(async (opts: Record<string, unknown>) => {
  await serve({ config: opts.config as string | undefined, dev: opts.dev === true, flags: flagValues(opts) });
});

program
  .command('keygen')
  .description('create a local key file with one new 256-bit key (mode 0600); refuses to overwrite')
  .requiredOption('--out <PATH>', 'where to write the key file')
  .action((opts: { out: string }) => {
    const r = keygen(opts.out);
    process.stdout.write(
      `wrote ${opts.out} (key file id ${r.id}, primary version ${r.version}, mode 0600)\n`,
    );
  });

addConfigFlags(
  program
    .command('probe')
    .description(
      'check a running plugin (--socket: Status, Encrypt a random seed validated with kube-apiserver rules, Decrypt it), ' +
        'or a configuration without a running plugin (--config: resolve the KEK, its state and key_id, wrap/unwrap a throwaway DEK)',
    )
    .option('--socket <ENDPOINT>', 'plugin endpoint, unix:///path.sock or unix:///@name')
    .option('--timeout <DURATION>', 'per-call deadline', '3s')
    .option('--expect-version <V>', 'v2, v2beta1 or any (with --socket)', 'any')
    .option(
      '--expect-loaded <VERSION>',
      'with --socket: also fail unless the plugin holds this local key version (read from --health-addr, /healthz?verbose)',
    )
    .option('--json', 'print the report as JSON'),
).action(async (opts: Record<string, unknown>) => {
  const timeout = String(opts.timeout);
  const timeoutMs = parseDuration(timeout);
  if (timeoutMs === undefined)
    throw new ConfigError('--timeout', `expected a duration like 3s; got ${JSON.stringify(timeout)}`);
  const socket = opts.socket as string | undefined;
  const configFile = opts.config as string | undefined;
  const flags = flagValues(opts);
  if (!socket && !configFile && Object.keys(flags).length === 0) {
    throw new ConfigError(
      'probe',
      'give --socket ENDPOINT (a running plugin) or --config FILE / provider flags (a configuration)',
    );
  }
  let steps: ProbeStep[];
  let target: string;
  let report: PreflightReport | undefined;
  if (socket) {
    const expect = String(opts.expectVersion);
    if (!['v2', 'v2beta1', 'any'].includes(expect))
      throw new ConfigError('--expect-version', 'expected v2, v2beta1 or any');
    steps = await runProbe({ socket, timeoutMs, expectVersion: expect as 'v2' | 'v2beta1' | 'any' });
    target = socket;
    if (opts.healthAddr !== undefined || opts.expectLoaded !== undefined) {
      const addr = (opts.healthAddr as string | undefined) ?? '127.0.0.1:8086';
      steps.push(await probeLoadedVersions(addr, timeoutMs, opts.expectLoaded as string | undefined));
    }
  } else {
    const config = loadConfig({ file: configFile, flags });
    report = emptyPreflightReport(config.provider);
    steps = await runDoctor(config, createLogger({ level: 'silent' }), timeoutMs, report);
    target = configFile ?? `provider ${config.provider}`;
  }
  const ok = steps.length > 0 && steps.every((s) => s.ok) && (socket ? steps.length >= 3 : true);
  if (opts.json) process.stdout.write(`${JSON.stringify({ ok, ...report, steps })}\n`);
  else {
    for (const s of steps)
      process.stdout.write(
        `${s.ok ? 'PASS' : 'FAIL'} ${s.name.padEnd(24)} ${String(s.ms).padStart(5)} ms  ${s.detail}\n`,
      );
    process.stdout.write(ok ? `probe: ok (${target})\n` : `probe: FAILED (${target})\n`);
  }
  if (!ok) process.exitCode = 1;
});

registerRender(program);
registerRotate(program);
registerInspect(program);
registerDecryptEtcdValue(program);
registerCensus(program);
registerReencrypt(program);

program
  .command('version')
  .description('print version information')
  .option('--json', 'as JSON')
  .action((opts: { json?: boolean }) => {
    const v = versionInfo();
    process.stdout.write(
      opts.json ? `${JSON.stringify(v)}\n` : `${v.name} ${v.version} (node ${v.node}, KMS API ${v.kmsApi})\n`,
    );
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  if (err instanceof ConfigError) {
    console.error(`k8s-kms-plugin: ${err.message}`);
    process.exit(2);
  }
  if (err instanceof PluginError) {
    console.error(`k8s-kms-plugin: ${err.message}`);
    process.exit(1);
  }
  console.error('k8s-kms-plugin: unexpected error:', err instanceof Error ? err.message : err);
  process.exit(1);
}
