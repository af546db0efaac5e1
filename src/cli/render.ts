/**
 * `k8s-kms-plugin render static-pod|encryption-config|kubeadm|capi|systemd|sidecar`: prints deployment
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
import type { SidecarInstance, SidecarOptions } from './render/sidecar.js';

interface Writer {
  write(text: string): unknown;
}

export function registerRender(program: Command, out: Writer = process.stdout): void {
  const cmd = program
    .command('render')
    .description(
      'print deployment files for this config: static-pod, encryption-config, kubeadm, capi, systemd or sidecar',
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
    .option('--user <USER>', 'system user for the systemd unit', RENDER_DEFAULTS.user)
    .option(
      '--instance <NAME=CONFIG>',
      'sidecar: another plugin instance in the same pod (its EncryptionConfiguration name and config file); repeatable',
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option('--apiserver-uid <UID>', 'sidecar: uid kube-apiserver runs as', RENDER_DEFAULTS.apiserverUid)
    .option('--apiserver-gid <GID>', 'sidecar: gid kube-apiserver runs as (default: its uid)')
    .option(
      '--no-native-sidecar',
      'sidecar: plain containers instead of initContainers with restartPolicy Always',
    )
    .option('--cluster <NAME>', 'sidecar: the cluster whose data the plugin protects', 'protected')
    .option(
      '--hosted-by <NAME>',
      'sidecar: the cluster that runs the kube-apiserver pods (must not be --cluster)',
    );
  addConfigFlags(cmd);
  cmd.action((target: string, opts: Record<string, unknown>) => {
    try {
      refuseInClusterShapes(target);
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
      if (target === 'sidecar') options.sidecar = sidecarOptions(opts, options);
      out.write(render(target, options));
    } catch (err) {
      if (err instanceof RenderError || err instanceof ConfigError)
        cmd.error(`render: ${err.message}`, { exitCode: 2, code: 'render.invalid' });
      throw err;
    }
  });
}

/**
 * A DaemonSet or Deployment of the plugin scheduled by the cluster it protects deadlocks after a
 * full restart: the apiserver waits for the plugin, the plugin's pods wait for the apiserver.
 * There is no such target, and asking for one explains why (docs/install/hosted-control-planes.md).
 */
export function refuseInClusterShapes(target: string): void {
  if (target === 'daemonset' || target === 'deployment')
    throw new RenderError(
      'render',
      `refusing to render a ${target} of the plugin: scheduled by the cluster it protects, it deadlocks after a full restart (kube-apiserver waits for the plugin, the plugin's pods wait for kube-apiserver). Use static-pod or systemd on the control-plane nodes, or sidecar when another cluster runs the apiserver pods (docs/install/hosted-control-planes.md)`,
    );
}

function integer(opt: string, text: string): number {
  if (!/^\d+$/.test(text)) throw new RenderError(opt, `expected a number, got ${JSON.stringify(text)}`);
  return Number(text);
}

function sidecarOptions(opts: Record<string, unknown>, o: RenderOptions): SidecarOptions {
  const uid = integer('--apiserver-uid', String(opts.apiserverUid));
  const gid = opts.apiserverGid === undefined ? uid : integer('--apiserver-gid', String(opts.apiserverGid));
  const instances: SidecarInstance[] = [{ name: o.name, config: o.config, configPath: o.configPath }];
  for (const spec of opts.instance as string[]) {
    const m = /^([A-Za-z0-9][A-Za-z0-9._-]{0,62})=(.+)$/.exec(spec);
    if (!m)
      throw new RenderError(
        '--instance',
        `expected NAME=CONFIG, e.g. kms-new=./new.yaml; got ${JSON.stringify(spec)}`,
      );
    if (instances.some((i) => i.name === m[1]))
      throw new RenderError('--instance', `${m[1]} is used twice: each instance needs its own name`);
    instances.push({
      name: m[1],
      config: loadConfig({ file: m[2], env: {} }),
      configPath: `/etc/k8s-kms-plugin/${m[1]}/config.yaml`,
    });
  }
  return {
    instances,
    apiserverUid: uid,
    apiserverGid: gid,
    nativeSidecar: opts.nativeSidecar !== false,
    cluster: String(opts.cluster),
    hostedBy: opts.hostedBy === undefined ? '' : String(opts.hostedBy),
  };
}
