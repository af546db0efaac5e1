/**
 * `render preflight-job`: a Job that runs `probe --config` where the plugin will run (a
 * control-plane node, with the static pod's host network, mounts, identity and security), before
 * anyone edits the EncryptionConfiguration. It prints one JSON report (KEK reachable, its state,
 * describe/encrypt/decrypt permissions, key_id) and fails (exit 1, Job failed) on anything that
 * would break kube-apiserver. `preflightCommand` is the same check as a plain command.
 */
import type { IJob } from 'kubernetes-models/batch/v1/Job';
import { goDuration, type RenderOptions } from './options.js';
import { staticPod } from './static-pod.js';

export function preflightCommand(o: RenderOptions): string[] {
  return ['probe', '--config', o.configPath, '--json', '--timeout', goDuration(o.timeoutMs)];
}

export function preflightJob(o: RenderOptions): IJob {
  const pod = staticPod(o);
  const spec = pod.spec!;
  const [c] = spec.containers;
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: 'k8s-kms-plugin-preflight',
      namespace: o.namespace,
      labels: { component: 'k8s-kms-plugin-preflight' },
    },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: 300,
      ttlSecondsAfterFinished: 86_400,
      template: {
        metadata: { labels: { component: 'k8s-kms-plugin-preflight' } },
        spec: {
          restartPolicy: 'Never',
          hostNetwork: spec.hostNetwork,
          securityContext: spec.securityContext,
          // Where the plugin runs: a control-plane node, with its files and network.
          nodeSelector: { 'node-role.kubernetes.io/control-plane': '' },
          tolerations: [
            { key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' },
          ],
          containers: [
            {
              name: 'preflight',
              image: c.image,
              imagePullPolicy: c.imagePullPolicy,
              args: preflightCommand(o),
              resources: c.resources,
              securityContext: c.securityContext,
              // Only the files: the socket directory is the running plugin's business.
              volumeMounts: (c.volumeMounts ?? []).filter((m) => m.readOnly),
            },
          ],
          volumes: (spec.volumes ?? []).filter((v) => v.hostPath?.type === 'File'),
        },
      },
    },
  };
}
