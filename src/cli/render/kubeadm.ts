/**
 * kubeadm ClusterConfiguration fragment: point kube-apiserver at the EncryptionConfiguration and
 * mount it and the plugin's socket directory into the apiserver's static pod. v1beta4 (kubeadm
 * 1.31+) takes extraArgs as a name/value list, v1beta3 as a map; both are supported.
 */
import { posix } from 'node:path';
import type { KubeadmApi, RenderOptions } from './options.js';
import { socketOf } from './paths.js';

export interface HostPathMount {
  name: string;
  hostPath: string;
  mountPath: string;
  readOnly: boolean;
  pathType: 'Directory' | 'DirectoryOrCreate' | 'File';
}

export type ExtraArgs = Array<{ name: string; value: string }> | Record<string, string>;

/** The apiserver flags and mounts, shared by `kubeadm` and `capi`. */
export function apiServerPatch(o: RenderOptions): { args: Record<string, string>; volumes: HostPathMount[] } {
  const encDir = posix.dirname(o.encryptionConfigPath);
  const volumes: HostPathMount[] = [
    {
      name: 'encryption-config',
      hostPath: encDir,
      mountPath: encDir,
      readOnly: true,
      pathType: 'DirectoryOrCreate',
    },
  ];
  const socket = socketOf(o.config);
  // An abstract socket (unix:///@name) needs no mount: both pods use the host network namespace.
  if (socket.kind === 'file') {
    volumes.push({
      name: 'kms-plugin-socket',
      hostPath: socket.dir,
      mountPath: socket.dir,
      readOnly: false,
      pathType: 'DirectoryOrCreate',
    });
  }
  return { args: { 'encryption-provider-config': o.encryptionConfigPath }, volumes };
}

export function extraArgs(args: Record<string, string>, api: KubeadmApi): ExtraArgs {
  return api === 'v1beta4' ? Object.entries(args).map(([name, value]) => ({ name, value })) : { ...args };
}

export function kubeadmClusterConfiguration(o: RenderOptions): Record<string, unknown> {
  const { args, volumes } = apiServerPatch(o);
  return {
    apiVersion: `kubeadm.k8s.io/${o.kubeadmApi}`,
    kind: 'ClusterConfiguration',
    apiServer: { extraArgs: extraArgs(args, o.kubeadmApi), extraVolumes: volumes },
  };
}

/** kubeadm refuses a non-empty /etc/kubernetes/manifests unless told; the plugin's pod lives there. */
export const PREFLIGHT_IGNORE = 'DirAvailable--etc-kubernetes-manifests';
