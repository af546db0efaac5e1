/**
 * Validation of every Kubernetes-ish document we ship or render.
 *
 * - core/v1 Pod: the JSON schema from `kubernetes-models` (generated from the Kubernetes OpenAPI
 *   spec; validated with ajv), plus our own rules.
 * - EncryptionConfiguration, kubeadm ClusterConfiguration and Cluster API KubeadmControlPlane: no
 *   maintained npm package ships schemas for these (they are not served by the apiserver's
 *   OpenAPI), so they are checked here by a strict hand-written validator of the fields we emit:
 *   unknown fields are errors, like kube-apiserver 1.31+'s strict decoding.
 *
 * Every function returns a list of problems ("path: message"); empty means valid.
 */
import { Pod } from 'kubernetes-models/v1/Pod';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export const HOST_PATH_TYPES = [
  '',
  'DirectoryOrCreate',
  'Directory',
  'FileOrCreate',
  'File',
  'Socket',
  'CharDevice',
  'BlockDevice',
];

function strictKeys(obj: Obj, allowed: string[], path: string, errs: string[]): void {
  for (const k of Object.keys(obj)) if (!allowed.includes(k)) errs.push(`${path}.${k}: unknown field`);
}

function need(cond: boolean, msg: string, errs: string[]): void {
  if (!cond) errs.push(msg);
}

const goDuration = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;
const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Schema validation through kubernetes-models (ajv over the Kubernetes OpenAPI schema). */
export function validatePodSchema(doc: unknown): string[] {
  try {
    new Pod(doc as ConstructorParameters<typeof Pod>[0]).validate();
    return [];
  } catch (err) {
    return [`Pod schema: ${(err as Error).message}`];
  }
}

export interface PodFacts {
  socketDirs: string[];
  probes: Array<{ kind: string; path: string; port: number | string; host?: string }>;
}

/** Our rules for the plugin's static pod. */
export function validatePluginPod(doc: unknown): { errs: string[]; facts: PodFacts } {
  const errs = validatePodSchema(doc);
  const facts: PodFacts = { socketDirs: [], probes: [] };
  if (!isObj(doc) || !isObj(doc.spec)) return { errs: [...errs, 'not a Pod'], facts };
  const spec = doc.spec as Obj;
  need(spec.hostNetwork === true, 'spec.hostNetwork must be true', errs);
  need(
    spec.priorityClassName === 'system-node-critical',
    'spec.priorityClassName must be system-node-critical',
    errs,
  );
  const containers = (spec.containers as Obj[]) ?? [];
  need(containers.length === 1, 'exactly one container', errs);
  const c = containers[0] ?? {};
  const sc = (c.securityContext ?? {}) as Obj;
  need(sc.runAsNonRoot === true, 'container runAsNonRoot', errs);
  need(sc.readOnlyRootFilesystem === true, 'container readOnlyRootFilesystem', errs);
  need(sc.allowPrivilegeEscalation === false, 'container allowPrivilegeEscalation false', errs);
  need(
    JSON.stringify((sc.capabilities as Obj | undefined)?.drop) === '["ALL"]',
    'container drops ALL capabilities',
    errs,
  );
  need(
    (sc.seccompProfile as Obj | undefined)?.type === 'RuntimeDefault',
    'container seccomp RuntimeDefault',
    errs,
  );
  need(typeof sc.runAsUser === 'number' && sc.runAsUser > 0, 'container runs as a fixed non-root uid', errs);
  const volumes = new Map(((spec.volumes as Obj[]) ?? []).map((v) => [v.name as string, v]));
  for (const m of (c.volumeMounts as Obj[]) ?? []) {
    const v = volumes.get(m.name as string);
    need(v !== undefined, `volumeMount ${String(m.name)} has no volume`, errs);
    const hp = v?.hostPath as Obj | undefined;
    need(hp !== undefined, `volume ${String(m.name)} is a hostPath`, errs);
    if (!hp) continue;
    need(HOST_PATH_TYPES.includes(String(hp.type ?? '')), `volume ${String(m.name)} hostPath type`, errs);
    if (hp.type === 'File') need(m.readOnly === true, `file mount ${String(m.name)} must be readOnly`, errs);
    if (hp.type === 'DirectoryOrCreate' || hp.type === 'Directory') facts.socketDirs.push(String(hp.path));
    need(m.mountPath === hp.path, `mount ${String(m.name)} keeps the host path (${String(hp.path)})`, errs);
  }
  need(facts.socketDirs.length <= 1, 'at most one writable directory (the socket directory)', errs);
  for (const kind of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
    const p = c[kind] as Obj | undefined;
    const g = p?.httpGet as Obj | undefined;
    if (g)
      facts.probes.push({
        kind,
        path: String(g.path),
        port: g.port as number,
        host: g.host as string | undefined,
      });
  }
  need(facts.probes.find((p) => p.kind === 'livenessProbe')?.path === '/livez', 'liveness on /livez', errs);
  need(
    facts.probes.find((p) => p.kind === 'readinessProbe')?.path === '/readyz',
    'readiness on /readyz',
    errs,
  );
  const healthPort = ((c.ports as Obj[]) ?? []).find((p) => p.name === 'health')?.containerPort;
  for (const p of facts.probes)
    need(
      p.port === healthPort,
      `${p.kind} port ${String(p.port)} is the health port ${String(healthPort)}`,
      errs,
    );
  need(
    JSON.stringify((c.args as string[])?.slice(0, 2)) === '["serve","--config"]',
    'container runs serve --config',
    errs,
  );
  const configPath = (c.args as string[])?.[2];
  need(
    ((c.volumeMounts as Obj[]) ?? []).some((m) => m.mountPath === configPath && m.readOnly === true),
    'config file mounted read-only',
    errs,
  );
  return { errs, facts };
}

export interface KmsFacts {
  name: string;
  endpoint: string;
}

/** EncryptionConfiguration (apiserver.config.k8s.io/v1): strict, plus our KMS v2 rules. */
export function validateEncryptionConfiguration(doc: unknown): { errs: string[]; kms: KmsFacts[] } {
  const errs: string[] = [];
  const kms: KmsFacts[] = [];
  if (!isObj(doc)) return { errs: ['not a mapping'], kms };
  strictKeys(doc, ['apiVersion', 'kind', 'resources'], '', errs);
  need(
    doc.apiVersion === 'apiserver.config.k8s.io/v1',
    'apiVersion must be apiserver.config.k8s.io/v1',
    errs,
  );
  need(doc.kind === 'EncryptionConfiguration', 'kind must be EncryptionConfiguration', errs);
  const resources = doc.resources;
  if (!Array.isArray(resources) || resources.length === 0)
    return { errs: [...errs, 'resources: required list'], kms };
  const names = new Set<string>();
  resources.forEach((r: unknown, i) => {
    const at = `resources[${i}]`;
    if (!isObj(r)) return errs.push(`${at}: not a mapping`);
    strictKeys(r, ['resources', 'providers'], at, errs);
    need(
      Array.isArray(r.resources) &&
        r.resources.length > 0 &&
        r.resources.every((s) => typeof s === 'string' && s !== ''),
      `${at}.resources: non-empty list of names`,
      errs,
    );
    if (!Array.isArray(r.providers) || r.providers.length === 0)
      return errs.push(`${at}.providers: required list`);
    r.providers.forEach((p: unknown, j) => {
      const pat = `${at}.providers[${j}]`;
      if (!isObj(p) || Object.keys(p).length !== 1)
        return errs.push(`${pat}: exactly one provider type per entry`);
      const [type, cfg] = Object.entries(p)[0];
      if (type === 'identity')
        return need(isObj(cfg) && Object.keys(cfg).length === 0, `${pat}.identity must be {}`, errs);
      if (type !== 'kms') return errs.push(`${pat}.${type}: we only emit kms and identity`);
      if (!isObj(cfg)) return errs.push(`${pat}.kms: not a mapping`);
      strictKeys(cfg, ['apiVersion', 'name', 'endpoint', 'cachesize', 'timeout'], `${pat}.kms`, errs);
      need(cfg.apiVersion === 'v2', `${pat}.kms.apiVersion must be v2 (it defaults to v1)`, errs);
      need(
        !('cachesize' in cfg),
        `${pat}.kms.cachesize must not be set for v2 (the apiserver rejects it)`,
        errs,
      );
      need(
        typeof cfg.name === 'string' && cfg.name !== '' && !cfg.name.includes(':'),
        `${pat}.kms.name: required, no ':'`,
        errs,
      );
      need(
        typeof cfg.endpoint === 'string' && /^unix:\/\/\/(@[^/]+|[^@].*)$/.test(cfg.endpoint),
        `${pat}.kms.endpoint: unix:///path or unix:///@name`,
        errs,
      );
      need(
        cfg.timeout === undefined ||
          (typeof cfg.timeout === 'string' &&
            goDuration.test(cfg.timeout) &&
            !/^0+[a-z]+$/.test(cfg.timeout)),
        `${pat}.kms.timeout: a duration > 0`,
        errs,
      );
      if (typeof cfg.name === 'string') {
        need(
          !names.has(cfg.name) || kms.some((k) => k.name === cfg.name && k.endpoint === cfg.endpoint),
          `${pat}.kms.name must be unique`,
          errs,
        );
        names.add(cfg.name);
        kms.push({ name: cfg.name, endpoint: String(cfg.endpoint) });
      }
    });
    const last = r.providers[r.providers.length - 1] as Obj;
    need(
      isObj(last) && 'identity' in last,
      `${at}.providers: identity last (keeps unencrypted data readable)`,
      errs,
    );
    return undefined;
  });
  return { errs, kms };
}

function validateExtraVolumes(list: unknown, at: string, errs: string[]): Obj[] {
  if (!Array.isArray(list)) {
    errs.push(`${at}: list required`);
    return [];
  }
  list.forEach((v: unknown, i) => {
    const p = `${at}[${i}]`;
    if (!isObj(v)) return errs.push(`${p}: not a mapping`);
    strictKeys(v, ['name', 'hostPath', 'mountPath', 'readOnly', 'pathType'], p, errs);
    need(typeof v.name === 'string' && dnsLabel.test(v.name), `${p}.name: DNS label`, errs);
    need(typeof v.hostPath === 'string' && v.hostPath.startsWith('/'), `${p}.hostPath: absolute path`, errs);
    need(
      typeof v.mountPath === 'string' && v.mountPath.startsWith('/'),
      `${p}.mountPath: absolute path`,
      errs,
    );
    need(v.readOnly === undefined || typeof v.readOnly === 'boolean', `${p}.readOnly: boolean`, errs);
    need(
      v.pathType === undefined || HOST_PATH_TYPES.includes(String(v.pathType)),
      `${p}.pathType: a HostPathType`,
      errs,
    );
    return undefined;
  });
  return list as Obj[];
}

function argsMap(
  extraArgs: unknown,
  form: 'list' | 'map',
  at: string,
  errs: string[],
): Record<string, string> {
  const out: Record<string, string> = {};
  if (form === 'list') {
    if (!Array.isArray(extraArgs)) {
      errs.push(`${at}: kubeadm v1beta4 takes a list of {name, value}`);
      return out;
    }
    extraArgs.forEach((a: unknown, i) => {
      if (!isObj(a)) return errs.push(`${at}[${i}]: not a mapping`);
      strictKeys(a, ['name', 'value'], `${at}[${i}]`, errs);
      need(
        typeof a.name === 'string' && typeof a.value === 'string',
        `${at}[${i}]: name and value are strings`,
        errs,
      );
      out[String(a.name)] = String(a.value);
      return undefined;
    });
  } else {
    if (!isObj(extraArgs)) {
      errs.push(`${at}: a map of flag name to value`);
      return out;
    }
    for (const [k, v] of Object.entries(extraArgs)) {
      need(typeof v === 'string', `${at}.${k}: string value`, errs);
      out[k] = String(v);
    }
  }
  for (const k of Object.keys(out))
    need(/^[a-z0-9-]+$/.test(k), `${at}: flag names without dashes prefix (${k})`, errs);
  return out;
}

export interface ApiServerFacts {
  args: Record<string, string>;
  volumes: Obj[];
}

/** kubeadm ClusterConfiguration (v1beta3 / v1beta4), the apiServer part we emit. */
export function validateKubeadmClusterConfiguration(doc: unknown): {
  errs: string[];
  apiServer: ApiServerFacts;
} {
  const errs: string[] = [];
  const apiServer: ApiServerFacts = { args: {}, volumes: [] };
  if (!isObj(doc)) return { errs: ['not a mapping'], apiServer };
  strictKeys(doc, ['apiVersion', 'kind', 'apiServer'], '', errs);
  const v = doc.apiVersion;
  need(
    v === 'kubeadm.k8s.io/v1beta3' || v === 'kubeadm.k8s.io/v1beta4',
    'apiVersion kubeadm.k8s.io/v1beta3 or v1beta4',
    errs,
  );
  need(doc.kind === 'ClusterConfiguration', 'kind ClusterConfiguration', errs);
  if (!isObj(doc.apiServer)) return { errs: [...errs, 'apiServer: required'], apiServer };
  strictKeys(doc.apiServer, ['extraArgs', 'extraVolumes'], 'apiServer', errs);
  apiServer.args = argsMap(
    doc.apiServer.extraArgs,
    v === 'kubeadm.k8s.io/v1beta4' ? 'list' : 'map',
    'apiServer.extraArgs',
    errs,
  );
  apiServer.volumes = validateExtraVolumes(doc.apiServer.extraVolumes, 'apiServer.extraVolumes', errs);
  return { errs, apiServer };
}

export interface CapiFacts {
  apiServer: ApiServerFacts;
  files: Obj[];
}

/** Cluster API KubeadmControlPlane (controlplane.cluster.x-k8s.io/v1beta1), the parts we emit. */
export function validateKubeadmControlPlane(doc: unknown): { errs: string[]; facts: CapiFacts } {
  const errs: string[] = [];
  const facts: CapiFacts = { apiServer: { args: {}, volumes: [] }, files: [] };
  if (!isObj(doc)) return { errs: ['not a mapping'], facts };
  strictKeys(doc, ['apiVersion', 'kind', 'metadata', 'spec'], '', errs);
  need(
    doc.apiVersion === 'controlplane.cluster.x-k8s.io/v1beta1',
    'apiVersion controlplane.cluster.x-k8s.io/v1beta1',
    errs,
  );
  need(doc.kind === 'KubeadmControlPlane', 'kind KubeadmControlPlane', errs);
  need(
    isObj(doc.metadata) && typeof doc.metadata.name === 'string' && dnsLabel.test(doc.metadata.name),
    'metadata.name',
    errs,
  );
  const spec = isObj(doc.spec) ? doc.spec : {};
  strictKeys(spec, ['kubeadmConfigSpec'], 'spec', errs);
  const kcs = isObj(spec.kubeadmConfigSpec) ? spec.kubeadmConfigSpec : {};
  strictKeys(
    kcs,
    ['clusterConfiguration', 'initConfiguration', 'joinConfiguration', 'files', 'preKubeadmCommands'],
    'spec.kubeadmConfigSpec',
    errs,
  );
  const cc = isObj(kcs.clusterConfiguration) ? kcs.clusterConfiguration : {};
  strictKeys(cc, ['apiServer'], 'clusterConfiguration', errs);
  const as = isObj(cc.apiServer) ? cc.apiServer : {};
  strictKeys(as, ['extraArgs', 'extraVolumes'], 'clusterConfiguration.apiServer', errs);
  facts.apiServer.args = argsMap(as.extraArgs, 'map', 'clusterConfiguration.apiServer.extraArgs', errs);
  facts.apiServer.volumes = validateExtraVolumes(
    as.extraVolumes,
    'clusterConfiguration.apiServer.extraVolumes',
    errs,
  );
  for (const key of ['initConfiguration', 'joinConfiguration']) {
    const c = kcs[key];
    if (c === undefined) continue;
    if (!isObj(c)) {
      errs.push(`${key}: not a mapping`);
      continue;
    }
    strictKeys(c, ['nodeRegistration'], key, errs);
    const nr = isObj(c.nodeRegistration) ? c.nodeRegistration : {};
    strictKeys(nr, ['ignorePreflightErrors'], `${key}.nodeRegistration`, errs);
    need(
      Array.isArray(nr.ignorePreflightErrors) && nr.ignorePreflightErrors.every((s) => typeof s === 'string'),
      `${key}.nodeRegistration.ignorePreflightErrors: list of strings`,
      errs,
    );
  }
  if (kcs.preKubeadmCommands !== undefined) {
    need(
      Array.isArray(kcs.preKubeadmCommands) && kcs.preKubeadmCommands.every((s) => typeof s === 'string'),
      'preKubeadmCommands: list of strings',
      errs,
    );
  }
  const files = Array.isArray(kcs.files) ? (kcs.files as unknown[]) : [];
  need(files.length > 0, 'files: required', errs);
  files.forEach((f, i) => {
    const at = `files[${i}]`;
    if (!isObj(f)) return errs.push(`${at}: not a mapping`);
    strictKeys(f, ['path', 'owner', 'permissions', 'encoding', 'append', 'content', 'contentFrom'], at, errs);
    need(typeof f.path === 'string' && f.path.startsWith('/'), `${at}.path: absolute`, errs);
    need(
      typeof f.owner === 'string' && /^[a-z0-9_-]+:[a-z0-9_-]+$/.test(f.owner),
      `${at}.owner: user:group`,
      errs,
    );
    need(
      typeof f.permissions === 'string' && /^0[0-7]{3}$/.test(f.permissions),
      `${at}.permissions: octal string`,
      errs,
    );
    need('content' in f !== 'contentFrom' in f, `${at}: exactly one of content and contentFrom`, errs);
    if ('content' in f) need(typeof f.content === 'string', `${at}.content: string`, errs);
    if ('contentFrom' in f) {
      const cf = f.contentFrom;
      const ok =
        isObj(cf) &&
        Object.keys(cf).length === 1 &&
        isObj(cf.secret) &&
        typeof cf.secret.name === 'string' &&
        typeof cf.secret.key === 'string';
      need(
        ok && dnsLabel.test(String((cf as { secret: Obj }).secret.name)),
        `${at}.contentFrom: {secret: {name, key}}`,
        errs,
      );
      if (isObj(cf) && isObj(cf.secret))
        strictKeys(cf.secret, ['name', 'key'], `${at}.contentFrom.secret`, errs);
    }
    facts.files.push(f);
    return undefined;
  });
  return { errs, facts };
}

/** A systemd unit, parsed into sections of key → values (keys may repeat). */
export function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const sec = /^\[([A-Za-z]+)\]$/.exec(line);
    if (sec) {
      current = new Map();
      sections.set(sec[1], current);
      continue;
    }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (!kv || !current) throw new Error(`unit: cannot parse line ${JSON.stringify(raw)}`);
    current.set(kv[1], [...(current.get(kv[1]) ?? []), kv[2]]);
  }
  return sections;
}
