/**
 * The static pod that runs the plugin on every control-plane node, next to kube-apiserver.
 * Kubelet starts it from /etc/kubernetes/manifests without any API server, which is the point:
 * the apiserver cannot start until this socket answers.
 */
import type { IPod } from 'kubernetes-models/v1/Pod';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import type { IResourceRequirements } from 'kubernetes-models/v1/ResourceRequirements';
import type { ISecurityContext } from 'kubernetes-models/v1/SecurityContext';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import type { IVolumeMount } from 'kubernetes-models/v1/VolumeMount';
import { IMAGE_UID, RenderError, type RenderOptions } from './options.js';
import { filesOf, healthOf, socketOf, volumeName } from './paths.js';
import { SHIPPED_ENV } from './node-options.js';

export function staticPod(o: RenderOptions): IPod {
  const { config } = o;
  const health = healthOf(config, 'render static-pod');
  const socket = socketOf(config);
  const volumes: IVolume[] = [];
  const mounts: IVolumeMount[] = [];
  if (socket.kind === 'file') {
    // The directory, not the socket: the plugin (re)creates the socket at every start.
    volumes.push({ name: 'socket-dir', hostPath: { path: socket.dir, type: 'DirectoryOrCreate' } });
    mounts.push({ name: 'socket-dir', mountPath: socket.dir });
  }
  volumes.push({ name: 'config', hostPath: { path: o.configPath, type: 'File' } });
  mounts.push({ name: 'config', mountPath: o.configPath, readOnly: true });
  for (const f of filesOf(config)) {
    const name = volumeName(f.field);
    volumes.push({ name, hostPath: { path: f.path, type: 'File' } });
    mounts.push({ name, mountPath: f.path, readOnly: true });
  }
  const supplementalGroups = socketGroupId(config.socketGroup);
  const probe = (path: string, periodSeconds: number, failureThreshold: number): IProbe => ({
    httpGet: {
      ...(health.host ? { host: health.host } : {}),
      path,
      port: health.port,
      scheme: 'HTTP' as const,
    },
    periodSeconds,
    timeoutSeconds: 5,
    failureThreshold,
  });
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      // Fixed: kubelet names the mirror pod k8s-kms-plugin-<node>; --name is the EncryptionConfiguration's.
      name: 'k8s-kms-plugin',
      namespace: o.namespace,
      labels: { component: 'k8s-kms-plugin', tier: 'control-plane' },
    },
    spec: {
      hostNetwork: true,
      priorityClassName: 'system-node-critical',
      securityContext: {
        runAsNonRoot: true,
        runAsUser: IMAGE_UID,
        runAsGroup: IMAGE_UID,
        ...(supplementalGroups ? { supplementalGroups } : {}),
        seccompProfile: { type: 'RuntimeDefault' },
      },
      containers: [
        {
          name: 'k8s-kms-plugin',
          image: o.image,
          imagePullPolicy: 'IfNotPresent',
          args: ['serve', '--config', o.configPath],
          env: SHIPPED_ENV.map((e) => ({ name: e.name, value: e.value })),
          ports: [{ name: 'health', containerPort: health.port, protocol: 'TCP' }],
          startupProbe: probe('/livez', 2, 30),
          livenessProbe: probe('/livez', 10, 6),
          readinessProbe: probe('/readyz', 5, 3),
          resources: pluginResources(),
          securityContext: pluginSecurityContext(),
          volumeMounts: mounts,
        },
      ],
      volumes,
    },
  };
}

/** Requests and limits of the plugin container (static pod and sidecar alike). */
export function pluginResources(): IResourceRequirements {
  return { requests: { cpu: '20m', memory: '64Mi' }, limits: { memory: '256Mi' } };
}

/** The plugin container's securityContext (static pod and sidecar alike). */
export function pluginSecurityContext(): ISecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: IMAGE_UID,
    runAsGroup: IMAGE_UID,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    privileged: false,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/**
 * A non-root process can give the socket to a group only if it is a member: the pod joins the
 * group by number. Names cannot be used, because the image's /etc/group does not know the host's.
 */
export function socketGroupId(group: string | number | undefined): number[] | undefined {
  if (group === undefined) return undefined;
  const gid = typeof group === 'number' ? group : /^\d+$/.test(group) ? Number(group) : NaN;
  if (!Number.isInteger(gid)) {
    throw new RenderError(
      '--socket-group',
      `the static pod needs a numeric gid (got ${JSON.stringify(group)}): the container cannot resolve host group names; use e.g. socketGroup: 1000`,
    );
  }
  return [gid];
}
