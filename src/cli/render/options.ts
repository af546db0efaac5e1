/**
 * Inputs of every renderer: the validated plugin config plus deployment choices that are not
 * part of the plugin's own config (image, provider name in the EncryptionConfiguration, paths on
 * the node). Defaults match the docs and the checked-in examples in deploy/.
 */
import { parseDuration } from '../../config/fields.js';
import type { Config } from '../../config/schema.js';
import type { SidecarOptions } from './sidecar.js';

export type KubeadmApi = 'v1beta3' | 'v1beta4';
export const KUBEADM_APIS: readonly KubeadmApi[] = ['v1beta3', 'v1beta4'];

export interface RenderOptions {
  config: Config;
  /** Container image for the static pod. */
  image: string;
  /** EncryptionConfiguration provider name (no ':'; part of the etcd prefix, never change it). */
  name: string;
  /** Per-RPC timeout the apiserver uses, in milliseconds. */
  timeoutMs: number;
  /** Resources the EncryptionConfiguration encrypts. */
  resources: string[];
  /** Where the plugin's config file lives on the node. */
  configPath: string;
  /** Where the EncryptionConfiguration lives on the node. */
  encryptionConfigPath: string;
  /** Namespace of the static pod (mirror pod). */
  namespace: string;
  /** kubeadm config API for `render kubeadm`. */
  kubeadmApi: KubeadmApi;
  /** The plugin executable, for `render systemd`. */
  binary: string;
  /** System user the systemd unit runs as. */
  user: string;
  /** `render sidecar` only: the instances and the apiserver pod they join. */
  sidecar?: SidecarOptions;
}

export const RENDER_DEFAULTS = {
  image: 'k8s-kms-plugin:latest',
  name: 'k8s-kms-plugin',
  timeout: '3s',
  resources: ['secrets'],
  configPath: '/etc/k8s-kms-plugin/config.yaml',
  encryptionConfigPath: '/etc/kubernetes/enc/encryption-config.yaml',
  namespace: 'kube-system',
  kubeadmApi: 'v1beta4' as KubeadmApi,
  binary: '/usr/local/bin/k8s-kms-plugin',
  user: 'k8s-kms-plugin',
  apiserverUid: '0',
};

/** The fixed non-root uid/gid of the container image (distroless `nonroot`). */
export const IMAGE_UID = 65532;

export class RenderError extends Error {
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(`${option}: ${message}`);
    this.name = 'RenderError';
  }
}

/** Checks the deployment options; every error names the option and the fix. */
export function checkOptions(o: RenderOptions): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(o.name)) {
    throw new RenderError(
      '--name',
      `${JSON.stringify(o.name)} is not a valid provider name: use letters, digits, ".", "_", "-" (no ":"), at most 63 characters`,
    );
  }
  if (!(o.timeoutMs > 0)) throw new RenderError('--timeout', 'must be greater than 0, e.g. 3s');
  if (o.resources.length === 0)
    throw new RenderError('--resources', 'list at least one resource, e.g. secrets,configmaps');
  for (const r of o.resources) {
    if (!/^(\*\.\*|\*\.[a-z0-9.-]*|[a-z0-9-]+(\.[a-z0-9.-]+)?)$/.test(r)) {
      throw new RenderError(
        '--resources',
        `${JSON.stringify(r)} is not a resource: use e.g. secrets, configmaps, widgets.example.com, '*.apps' or '*.*'`,
      );
    }
  }
  for (const [opt, p] of [
    ['--node-config', o.configPath],
    ['--encryption-config-path', o.encryptionConfigPath],
    ['--binary', o.binary],
  ] as const) {
    if (!p.startsWith('/') || p.includes('\0') || /\s/.test(p))
      throw new RenderError(opt, `${JSON.stringify(p)} must be an absolute path without spaces`);
  }
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(o.namespace))
    throw new RenderError('--namespace', `${JSON.stringify(o.namespace)} is not a namespace name`);
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(o.user))
    throw new RenderError('--user', `${JSON.stringify(o.user)} is not a valid system user name`);
  if (!o.image || /\s/.test(o.image))
    throw new RenderError(
      '--image',
      'set a container image reference, e.g. registry.example.com/k8s-kms-plugin:v0.1.0',
    );
  if (!KUBEADM_APIS.includes(o.kubeadmApi))
    throw new RenderError('--kubeadm-api', `expected one of ${KUBEADM_APIS.join(', ')}`);
}

/** Parses a `--timeout` value ("3s", "500ms", or seconds as a number). */
export function parseTimeout(text: string): number {
  const ms = /^\d+(\.\d+)?$/.test(text) ? Math.round(Number(text) * 1000) : parseDuration(text);
  if (ms === undefined || ms <= 0)
    throw new RenderError('--timeout', `expected a duration like 3s or 500ms; got ${JSON.stringify(text)}`);
  return ms;
}

/** Milliseconds → a Go/metav1 duration string: 3000 → "3s", 1500 → "1.5s", 90000 → "1m30s". */
export function goDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = (ms % 60_000) / 1000;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s ? `${s}s` : ''}`;
}
