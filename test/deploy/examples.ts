/**
 * The checked-in files under deploy/ that are `render` output, with the exact command that makes
 * each. test/deploy/examples.test.ts asserts they are byte-identical to a fresh render; to refresh
 * them after changing a renderer or an example config:
 *
 *   UPDATE_DEPLOY_EXAMPLES=1 node --experimental-vm-modules node_modules/jest/bin/jest.js test/deploy/examples.test.ts
 */
export const EXAMPLE_IMAGE = 'registry.example.com/k8s-kms-plugin:v0.1.0';

export interface Example {
  /** Output file, relative to the repo root. */
  out: string;
  /** Arguments after `k8s-kms-plugin`. */
  argv: string[];
}

const img = ['--image', EXAMPLE_IMAGE];
const cfg = (name: string) => ['--config', `deploy/examples/config-${name}.yaml`];

export const EXAMPLES: Example[] = [
  { out: 'deploy/static-pod/k8s-kms-plugin.yaml', argv: ['render', 'static-pod', ...cfg('local'), ...img] },
  {
    out: 'deploy/static-pod/k8s-kms-plugin-v2beta1.yaml',
    argv: ['render', 'static-pod', ...cfg('v2beta1'), ...img],
  },
  ...['local', 'aws', 'gcp', 'azure', 'vault'].map((p) => ({
    out: `deploy/encryption-config/${p}.yaml`,
    argv: [
      'render',
      'encryption-config',
      ...cfg(p),
      '--name',
      `kms-${p}`,
      '--resources',
      'secrets,configmaps',
    ],
  })),
  {
    out: 'deploy/encryption-config/v2beta1-abstract-socket.yaml',
    argv: [
      'render',
      'encryption-config',
      ...cfg('v2beta1'),
      '--name',
      'kms-local',
      '--resources',
      'secrets,configmaps',
    ],
  },
  { out: 'deploy/kubeadm/cluster-configuration.yaml', argv: ['render', 'kubeadm', ...cfg('local')] },
  {
    out: 'deploy/kubeadm/cluster-configuration-v1beta3.yaml',
    argv: ['render', 'kubeadm', ...cfg('local'), '--kubeadm-api', 'v1beta3'],
  },
  {
    out: 'deploy/cluster-api/kubeadm-control-plane.yaml',
    argv: [
      'render',
      'capi',
      ...cfg('local'),
      ...img,
      '--name',
      'kms-local',
      '--resources',
      'secrets,configmaps',
    ],
  },
  { out: 'deploy/systemd/k8s-kms-plugin.service', argv: ['render', 'systemd', ...cfg('local')] },
  {
    out: 'deploy/sidecar/kube-apiserver-sidecar.yaml',
    argv: [
      'render',
      'sidecar',
      ...cfg('vault'),
      ...img,
      '--name',
      'kms-vault',
      '--cluster',
      'tenant-a',
      '--hosted-by',
      'management',
      '--namespace',
      'tenant-a',
    ],
  },
  { out: 'deploy/preflight/preflight-job.yaml', argv: ['render', 'preflight-job', ...cfg('vault'), ...img] },
];
