/**
 * Cluster API: the KubeadmControlPlane `kubeadmConfigSpec` pieces that install the plugin on every
 * control-plane machine before kubeadm runs. Files with no secrets (EncryptionConfiguration,
 * static pod) are inline; the plugin's config and key/credential files come from Secrets in the
 * management cluster (`contentFrom`), so they never sit in the KubeadmControlPlane object.
 */
import { posix } from 'node:path';
import type { RenderOptions } from './options.js';
import { IMAGE_UID } from './options.js';
import { encryptionConfig } from './encryption-config.js';
import { PREFLIGHT_IGNORE, apiServerPatch } from './kubeadm.js';
import { filesOf, socketOf, volumeName } from './paths.js';
import { staticPod } from './static-pod.js';
import { toYaml } from './yaml.js';

export const STATIC_POD_PATH = '/etc/kubernetes/manifests/k8s-kms-plugin.yaml';
export const TMPFILES_PATH = '/etc/tmpfiles.d/k8s-kms-plugin.conf';

/** systemd-tmpfiles line that recreates the socket directory, owned by the image's uid, at boot. */
export function tmpfilesLine(dir: string): string {
  const runDir = dir.startsWith('/var/run/') ? dir.slice('/var'.length) : dir;
  return `d ${runDir} 0750 ${IMAGE_UID} ${IMAGE_UID} -\n`;
}

export function capiControlPlane(o: RenderOptions): Record<string, unknown> {
  const { args, volumes } = apiServerPatch(o);
  const owner = `${IMAGE_UID}:${IMAGE_UID}`;
  const files: Array<Record<string, unknown>> = [
    {
      path: o.encryptionConfigPath,
      owner: 'root:root',
      permissions: '0600',
      content: toYaml(encryptionConfig(o)),
    },
    { path: STATIC_POD_PATH, owner: 'root:root', permissions: '0600', content: toYaml(staticPod(o)) },
    {
      path: o.configPath,
      owner,
      permissions: '0600',
      contentFrom: { secret: { name: `${o.name}-config`, key: posix.basename(o.configPath) } },
    },
  ];
  for (const f of filesOf(o.config)) {
    files.push({
      path: f.path,
      owner,
      permissions: '0600',
      contentFrom: { secret: { name: `${o.name}-${volumeName(f.field)}`, key: posix.basename(f.path) } },
    });
  }
  const preKubeadmCommands: string[] = [];
  const socket = socketOf(o.config);
  if (socket.kind === 'file') {
    files.push({
      path: TMPFILES_PATH,
      owner: 'root:root',
      permissions: '0644',
      content: tmpfilesLine(socket.dir),
    });
    preKubeadmCommands.push(`systemd-tmpfiles --create ${TMPFILES_PATH}`);
  }
  const nodeRegistration = { ignorePreflightErrors: [PREFLIGHT_IGNORE] };
  return {
    apiVersion: 'controlplane.cluster.x-k8s.io/v1beta1',
    kind: 'KubeadmControlPlane',
    metadata: { name: 'my-cluster-control-plane' },
    spec: {
      kubeadmConfigSpec: {
        clusterConfiguration: { apiServer: { extraArgs: args, extraVolumes: volumes } },
        initConfiguration: { nodeRegistration },
        joinConfiguration: { nodeRegistration },
        files,
        ...(preKubeadmCommands.length ? { preKubeadmCommands } : {}),
      },
    },
  };
}
