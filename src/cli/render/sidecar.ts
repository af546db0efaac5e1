/**
 * `render sidecar`: the plugin as a container in a kube-apiserver pod that another cluster runs
 * (hosted control planes: Kamaji, Karmada, HyperShift-style operators, Cluster API control-plane
 * providers, vCluster). Two documents:
 *
 * 1. the container stanza(s): one plugin container per instance, as native sidecars
 *    (`initContainers` with `restartPolicy: Always`, Kubernetes 1.29+: started, and startup-probed,
 *    before kube-apiserver) or plain `containers` with `--no-native-sidecar`;
 * 2. a full example kube-apiserver Deployment with them wired in, to merge into the real one.
 *
 * Wiring: each file socket's directory is a shared `emptyDir` mounted into the plugin and
 * kube-apiserver containers; a non-root apiserver reaches the socket through its group (the pod
 * joins `socketGroup` and the socket mode must give the group read/write). Each instance has its
 * own socket and health port (the containers share the pod's network namespace); the health
 * listener binds the pod IP (kubelet probes it there) or is off, and then so are the probes.
 * Resources and securityContext are the static pod's. Config and credential files come from
 * Secret volumes mounted as directories (never subPath), so rotated credentials reach the plugin.
 */
import { SHIPPED_ENV } from './node-options.js';
import { posix } from 'node:path';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import type { IVolumeMount } from 'kubernetes-models/v1/VolumeMount';
import { parseHostPort } from '../../health/http-addr.js';
import type { Config } from '../../config/schema.js';
import { IMAGE_UID, RenderError, type RenderOptions } from './options.js';
import { filesOf, socketOf, volumeName } from './paths.js';
import { pluginResources, pluginSecurityContext, socketGroupId } from './static-pod.js';

export interface SidecarInstance {
  /** EncryptionConfiguration provider name; also names the container and its Secrets. */
  name: string;
  config: Config;
  /** Where the config file is mounted in the container. */
  configPath: string;
}

export interface SidecarOptions {
  instances: SidecarInstance[];
  /** uid/gid kube-apiserver runs as in its container (0 = root). */
  apiserverUid: number;
  apiserverGid: number;
  /** Native sidecars (initContainers, restartPolicy Always; Kubernetes 1.29+). */
  nativeSidecar: boolean;
  /** The cluster whose data the plugin protects, and the cluster that runs its apiserver pods. */
  cluster: string;
  hostedBy: string;
}

export const APISERVER_IMAGE = 'registry.k8s.io/kube-apiserver:v1.31.0';

interface Built {
  containers: IContainer[];
  volumes: IVolume[];
  apiserverMounts: IVolumeMount[];
  supplementalGroups: number[];
}

/** Refuses the shape that deadlocks after a full restart (see docs/install/hosted-control-planes.md). */
export function checkHosting(s: SidecarOptions): void {
  if (!s.hostedBy)
    throw new RenderError(
      '--hosted-by',
      'name the cluster that runs this kube-apiserver Deployment (the management cluster); a sidecar is only safe when that is not the cluster being protected',
    );
  if (s.hostedBy === s.cluster)
    throw new RenderError(
      '--hosted-by',
      `the apiserver pods of ${JSON.stringify(s.cluster)} would run in ${JSON.stringify(s.cluster)} itself: after a full restart its apiserver waits for the plugin, which waits for that apiserver to be scheduled. Use render static-pod or systemd for a self-hosted control plane`,
    );
}

function build(o: RenderOptions, s: SidecarOptions): Built {
  checkHosting(s);
  if (s.instances.length === 0) throw new RenderError('--instance', 'render at least one plugin instance');
  const containers: IContainer[] = [];
  const volumes: IVolume[] = [];
  const apiserverMounts: IVolumeMount[] = [];
  const socketDirs = new Map<string, string>();
  const sockets = new Map<string, string>();
  const ports = new Map<number, string>();
  const groups = new Set<number>();
  const nonRootApiserver = s.apiserverUid !== 0 && s.apiserverUid !== IMAGE_UID;
  const names = new Set<string>();

  s.instances.forEach((inst, i) => {
    const label = `instance ${JSON.stringify(inst.name)}`;
    const cname = containerName(inst.name, s.instances.length);
    if (names.has(cname))
      throw new RenderError('--instance', `${label}: two instances would share container name ${cname}`);
    names.add(cname);
    const mounts: IVolumeMount[] = [];
    const prefix = s.instances.length === 1 ? '' : `${i + 1}-`;

    // Socket: its own path; file sockets share an emptyDir per directory with kube-apiserver.
    const socket = socketOf(inst.config);
    const key = socket.kind === 'file' ? socket.path : `@${socket.name}`;
    if (sockets.has(key))
      throw new RenderError(
        '--listen',
        `${label} and ${sockets.get(key)} use the same socket ${key}: give each instance its own`,
      );
    sockets.set(key, label);
    if (socket.kind === 'file') {
      let vol = socketDirs.get(socket.dir);
      if (!vol) {
        vol = `kms-socket${socketDirs.size ? `-${socketDirs.size + 1}` : ''}`;
        socketDirs.set(socket.dir, vol);
        volumes.push({ name: vol, emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } });
        apiserverMounts.push({ name: vol, mountPath: socket.dir });
      }
      mounts.push({ name: vol, mountPath: socket.dir });
    }

    // The socket's owner is the plugin (uid 65532); a non-root apiserver gets in by group.
    const gids = socketGroupId(inst.config.socketGroup);
    if (gids) gids.forEach((g) => groups.add(g));
    if (nonRootApiserver) {
      const mode = inst.config.socketMode;
      if (!gids || gids[0] !== s.apiserverGid || (mode & 0o060) !== 0o060)
        throw new RenderError(
          '--socket-group',
          `${label}: kube-apiserver runs as uid ${s.apiserverUid} (gid ${s.apiserverGid}) and cannot open a socket owned by uid ${IMAGE_UID} with mode 0${mode.toString(8)}; set socketGroup: ${s.apiserverGid} and socketMode: "0660" in its config`,
        );
    }

    // Config and credential files: Secret volumes, one per directory, mounted whole (rotations arrive).
    const byDir = new Map<string, Array<{ key: string; field: string }>>();
    const add = (path: string, field: string): void => {
      const dir = posix.dirname(path);
      if (socket.kind === 'file' && dir === socket.dir)
        throw new RenderError(field, `${path} is in the socket directory ${dir}; keep files elsewhere`);
      const list = byDir.get(dir) ?? [];
      list.push({ key: posix.basename(path), field });
      byDir.set(dir, list);
    };
    add(inst.configPath, 'config');
    for (const f of filesOf(inst.config)) add(f.path, f.field);
    for (const [dir, items] of byDir) {
      const keys = new Set<string>();
      for (const it of items)
        if (keys.has(it.key)) throw new RenderError(it.field, `two files named ${it.key} in ${dir}`);
        else keys.add(it.key);
      const vol = `${prefix}${volumeName(`${inst.name}-${dir}`)}`.slice(0, 63).replace(/-+$/, '');
      volumes.push({
        name: vol,
        secret: {
          secretName: secretName(inst.name, dir),
          defaultMode: 0o440,
          items: items.map((it) => ({ key: it.key, path: it.key })),
        },
      });
      mounts.push({ name: vol, mountPath: dir, readOnly: true });
    }

    // Health: bound on the pod IP (kubelet probes it there), or off together with the probes.
    const args = ['serve', '--config', inst.configPath];
    const c: IContainer = {
      name: cname,
      image: o.image,
      imagePullPolicy: 'IfNotPresent',
      args,
      env: SHIPPED_ENV.map((e) => ({ name: e.name, value: e.value })),
      resources: pluginResources(),
      securityContext: pluginSecurityContext(),
      volumeMounts: mounts,
    };
    if (inst.config.healthAddr === '') {
      args.push('--health-addr', '');
    } else {
      const { port } = parseHostPort(inst.config.healthAddr);
      if (port === 0)
        throw new RenderError(
          '--health-addr',
          `${label}: a sidecar needs a fixed health port, not 0 (or "" to disable it)`,
        );
      if (ports.has(port))
        throw new RenderError(
          '--health-addr',
          `${label} and ${ports.get(port)} both use health port ${port}: the containers share the pod's network; give each its own port`,
        );
      ports.set(port, label);
      args.push('--health-addr', `0.0.0.0:${port}`);
      const probe = (path: string, periodSeconds: number, failureThreshold: number): IProbe => ({
        httpGet: { path, port, scheme: 'HTTP' },
        periodSeconds,
        timeoutSeconds: 5,
        failureThreshold,
      });
      c.ports = [{ name: portName(i), containerPort: port, protocol: 'TCP' }];
      c.startupProbe = probe('/livez', 2, 30);
      c.livenessProbe = probe('/livez', 10, 6);
      c.readinessProbe = probe('/readyz', 5, 3);
    }
    if (s.nativeSidecar) c.restartPolicy = 'Always';
    containers.push(c);
  });
  return { containers, volumes, apiserverMounts, supplementalGroups: [...groups] };
}

/** The container stanza(s): paste under `initContainers:` (native) or `containers:`. */
export function sidecarContainers(o: RenderOptions, s: SidecarOptions): IContainer[] {
  return build(o, s).containers;
}

/** A full example kube-apiserver Deployment with the plugin wired in. */
export function sidecarDeployment(o: RenderOptions, s: SidecarOptions): IDeployment {
  const b = build(o, s);
  const encDir = posix.dirname(o.encryptionConfigPath);
  const labels = { app: 'kube-apiserver', 'kms-plugin.k8s.io/cluster': s.cluster };
  const apiserver: IContainer = {
    name: 'kube-apiserver',
    image: APISERVER_IMAGE,
    command: ['kube-apiserver'],
    // Add these two flags to your existing ones (a strategic-merge patch would replace the list).
    args: [
      `--encryption-provider-config=${o.encryptionConfigPath}`,
      // KMS v2 reloads the EncryptionConfiguration file when it changes (rotations, moves).
      '--encryption-provider-config-automatic-reload=true',
    ],
    ...(s.apiserverUid !== 0
      ? { securityContext: { runAsUser: s.apiserverUid, runAsGroup: s.apiserverGid, runAsNonRoot: true } }
      : {}),
    volumeMounts: [{ name: 'encryption-config', mountPath: encDir, readOnly: true }, ...b.apiserverMounts],
  };
  const groups = [...new Set([...b.supplementalGroups])];
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: 'kube-apiserver',
      namespace: o.namespace,
      labels,
      annotations: {
        'kms-plugin.k8s.io/protects': s.cluster,
        'kms-plugin.k8s.io/hosted-by': s.hostedBy,
      },
    },
    spec: {
      selector: { matchLabels: { app: 'kube-apiserver' } },
      template: {
        metadata: { labels },
        spec: {
          // fsGroup: the Secret files (mode 0440) are readable by the plugin's group; the socket
          // group (if any) is joined so the plugin may hand the socket to it.
          securityContext: {
            fsGroup: IMAGE_UID,
            ...(groups.length ? { supplementalGroups: groups } : {}),
          },
          ...(s.nativeSidecar
            ? { initContainers: b.containers, containers: [apiserver] }
            : { containers: [apiserver, ...b.containers] }),
          volumes: [
            {
              name: 'encryption-config',
              secret: {
                secretName: `${s.instances[0].name}-encryption-config`,
                defaultMode: 0o440,
                items: [
                  {
                    key: posix.basename(o.encryptionConfigPath),
                    path: posix.basename(o.encryptionConfigPath),
                  },
                ],
              },
            },
            ...b.volumes,
          ],
        },
      },
    },
  };
}

/** Secret that holds one directory's files of an instance. */
export function secretName(instance: string, dir: string): string {
  return volumeName(`${instance}-${dir}`);
}

function containerName(instance: string, count: number): string {
  return count === 1 && instance === 'k8s-kms-plugin' ? 'k8s-kms-plugin' : volumeName(`kms-${instance}`);
}

/** Port names are at most 15 characters and unique in the pod. */
function portName(i: number): string {
  return i === 0 ? 'kms-health' : `kms-health-${i + 1}`;
}
