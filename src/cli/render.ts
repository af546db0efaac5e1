/**
 * `k8s-kms-plugin render static-pod|encryption-config|kubeadm|capi|systemd`: prints deployment
 * files generated from the same config (file + KMS_PLUGIN_* env + flags) that `serve` reads, so
 * the socket path, health port and mounted files always match what the plugin will do.
 */
import { Command, Option } from 'commander';
import { ConfigError } from '../errors.js';
import { loadConfig } from '../config/load.js';
import { addConfigFlags, flagValues } from './flags.js';
import { TARGETS, isTarget, render } from './render/index.js';
import {
  KUBEADM_APIS,
  RENDER_DEFAULTS,
  RenderError,
  parseTimeout,
  type KubeadmApi,
  type RenderOptions,
} from './render/options.js';

interface Writer {
  write(text: string): unknown;
}

export function registerRender(program: Command, out: Writer = process.stdout): void {
  const cmd = program
    .command('render')
    .description(
      'print deployment files for this config: static-pod, encryption-config, kubeadm, capi or systemd',
    )
    .argument('<target>', `one of: ${TARGETS.join(', ')}`)
    .option('--image <IMAGE>', 'container image for the static pod', RENDER_DEFAULTS.image)
    .option(
      '--name <NAME>',
      'EncryptionConfiguration provider name (no ":"; never change it once data is written)',
      RENDER_DEFAULTS.name,
    )
    .option('--timeout <DURATION>', 'per-call timeout kube-apiserver uses, e.g. 3s', RENDER_DEFAULTS.timeout)
    .option(
      '--resources <LIST>',
      'comma-separated resources to encrypt, e.g. secrets,configmaps',
      RENDER_DEFAULTS.resources.join(','),
    )
    .option(
      '--node-config <PATH>',
      'where the plugin config file lives on the node',
      RENDER_DEFAULTS.configPath,
    )
    .option(
      '--encryption-config-path <PATH>',
      'where the EncryptionConfiguration lives on the node',
      RENDER_DEFAULTS.encryptionConfigPath,
    )
    .option('--namespace <NS>', 'namespace of the static pod', RENDER_DEFAULTS.namespace)
    .addOption(
      new Option('--kubeadm-api <VERSION>', 'kubeadm config API')
        .choices([...KUBEADM_APIS])
        .default(RENDER_DEFAULTS.kubeadmApi),
    )
    .option('--binary <PATH>', 'plugin executable for the systemd unit', RENDER_DEFAULTS.binary)
    .option('--user <USER>', 'system user for the systemd unit', RENDER_DEFAULTS.user);
  addConfigFlags(cmd);
  cmd.action((target: string, opts: Record<string, unknown>) => {
    try {
      if (!isTarget(target))
        throw new RenderError(
          'render',
          `unknown target ${JSON.stringify(target)}: use one of ${TARGETS.join(', ')}`,
        );
      const flags = flagValues(opts);
      const config = loadConfig({ file: opts.config as string | undefined, flags });
      const options: RenderOptions = {
        config,
        image: String(opts.image),
        name: String(opts.name),
        timeoutMs: parseTimeout(String(opts.timeout)),
        resources: String(opts.resources)
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
        configPath: String(opts.nodeConfig),
        encryptionConfigPath: String(opts.encryptionConfigPath),
        namespace: String(opts.namespace),
        kubeadmApi: opts.kubeadmApi as KubeadmApi,
        binary: String(opts.binary),
        user: String(opts.user),
      };
      out.write(render(target, options));
    } catch (err) {
      if (err instanceof RenderError || err instanceof ConfigError)
        cmd.error(`render: ${err.message}`, { exitCode: 2, code: 'render.invalid' });
      throw err;
    }
  });
}
