/**
 * Every YAML file under deploy/ (except deploy/policies/, owned by the provider docs) is parsed and
 * validated: Pods against the Kubernetes JSON schema (kubernetes-models), the other kinds with the
 * strict validators in validate.ts, plugin configs with the plugin's own schema, Prometheus rules
 * against the metrics the plugin really exports. Then the cross-file invariants: the socket the
 * static pod mounts is the endpoint the EncryptionConfiguration dials, and so on.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { Container } from 'kubernetes-models/v1/Container';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { Metrics } from '../../src/observability/metrics.js';
import {
  parseUnit,
  validateEncryptionConfiguration,
  validateKubeadmClusterConfiguration,
  validateKubeadmControlPlane,
  validatePluginPod,
} from './validate.js';

const root = join(dirname(new URL(import.meta.url).pathname), '..', '..');
const deployDir = join(root, 'deploy');

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return relative(deployDir, p) === 'policies' ? [] : walk(p);
    return [p];
  });
}

const files = walk(deployDir).map((p) => relative(root, p));
const yamlFiles = files.filter((f) => /\.ya?ml$/.test(f));

function docsOf(file: string): unknown[] {
  const docs = parseAllDocuments(readFileSync(join(root, file), 'utf8'));
  for (const d of docs) if (d.errors.length) throw new Error(`${file}: ${d.errors[0].message}`);
  return docs.map((d) => d.toJS() as unknown);
}

type Kind =
  | 'pod'
  | 'encryption-config'
  | 'kubeadm'
  | 'capi'
  | 'plugin-config'
  | 'prometheus-rules'
  | 'containers'
  | 'deployment'
  | 'job';

function kindOf(file: string, doc: unknown): Kind {
  const o = doc as Record<string, unknown>;
  if (o?.apiVersion === 'v1' && o.kind === 'Pod') return 'pod';
  if (o?.kind === 'EncryptionConfiguration') return 'encryption-config';
  if (o?.kind === 'ClusterConfiguration') return 'kubeadm';
  if (o?.kind === 'KubeadmControlPlane') return 'capi';
  if (o?.apiVersion === 'apps/v1' && o.kind === 'Deployment') return 'deployment';
  if (o?.apiVersion === 'batch/v1' && o.kind === 'Job') return 'job';
  if (Array.isArray(doc) && file.startsWith('deploy/sidecar/')) return 'containers';
  if (o && 'groups' in o) return 'prometheus-rules';
  if (file.startsWith('deploy/examples/config-')) return 'plugin-config';
  throw new Error(`${file}: unrecognised document; teach test/deploy/manifests.test.ts to validate it`);
}

/** Every series name the plugin exports (histograms also as _bucket/_sum/_count). */
const metricNames = new Set(
  new Metrics({ processMetrics: true }).registry.getMetricsAsArray().flatMap((m) => {
    const name = (m as unknown as { name: string }).name;
    return [name, `${name}_bucket`, `${name}_sum`, `${name}_count`];
  }),
);

describe('every YAML under deploy/ is valid', () => {
  it('finds the expected set of files', () => {
    expect(yamlFiles.length).toBeGreaterThanOrEqual(15);
    for (const must of [
      'deploy/static-pod/k8s-kms-plugin.yaml',
      'deploy/prometheus/alerts.yaml',
      'deploy/kubeadm/cluster-configuration.yaml',
    ]) {
      expect(yamlFiles).toContain(must);
    }
  });

  it.each(yamlFiles.map((f) => [f]))('%s', (file) => {
    const docs = docsOf(file);
    expect(docs.length).toBeGreaterThan(0);
    for (const doc of docs) {
      const kind = kindOf(file, doc);
      let errs: string[] = [];
      switch (kind) {
        case 'pod':
          errs = validatePluginPod(doc).errs;
          break;
        case 'encryption-config':
          errs = validateEncryptionConfiguration(doc).errs;
          break;
        case 'kubeadm':
          errs = validateKubeadmClusterConfiguration(doc).errs;
          break;
        case 'capi': {
          const r = validateKubeadmControlPlane(doc);
          errs = [...r.errs];
          // The embedded files are validated like the standalone ones.
          for (const f of r.facts.files) {
            if (typeof f.content !== 'string' || !String(f.path).endsWith('.yaml')) continue;
            const inner = docsOf0(f.content);
            errs.push(
              ...(kindOf(file, inner) === 'pod'
                ? validatePluginPod(inner).errs
                : validateEncryptionConfiguration(inner).errs),
            );
          }
          break;
        }
        case 'plugin-config':
          expect(() => loadConfig({ file: join(root, file), env: {} })).not.toThrow();
          break;
        case 'prometheus-rules':
          errs = validateRules(doc);
          break;
        // Sidecar stanza, apiserver Deployment and preflight Job: the Kubernetes schemas.
        case 'containers':
          errs = (doc as unknown[]).flatMap((c) => schemaErrors(() => new Container(c as never).validate()));
          break;
        case 'deployment':
          errs = schemaErrors(() => new Deployment(doc as never).validate());
          break;
        case 'job':
          errs = schemaErrors(() => new Job(doc as never).validate());
          break;
      }
      expect([file, errs]).toEqual([file, []]);
    }
  });
});

function schemaErrors(validate: () => void): string[] {
  try {
    validate();
    return [];
  } catch (err) {
    return [(err as Error).message];
  }
}

function docsOf0(text: string): unknown {
  return parseAllDocuments(text)[0].toJS() as unknown;
}

function validateRules(doc: unknown): string[] {
  const errs: string[] = [];
  const groups = (doc as { groups?: unknown }).groups;
  if (!Array.isArray(groups) || groups.length === 0) return ['groups: required'];
  const alerts = new Set<string>();
  for (const g of groups as Array<Record<string, unknown>>) {
    for (const k of Object.keys(g))
      if (!['name', 'interval', 'rules'].includes(k)) errs.push(`group.${k}: unknown field`);
    for (const r of (g.rules as Array<Record<string, unknown>>) ?? []) {
      for (const k of Object.keys(r))
        if (!['alert', 'expr', 'for', 'labels', 'annotations'].includes(k))
          errs.push(`rule.${k}: unknown field`);
      if (typeof r.alert !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(r.alert))
        errs.push(`rule.alert: ${String(r.alert)}`);
      alerts.add(String(r.alert));
      if (typeof r.expr !== 'string') errs.push(`${String(r.alert)}: expr required`);
      if (r.for !== undefined && !/^(\d+[smhdwy])+$/.test(String(r.for)))
        errs.push(`${String(r.alert)}: for must be a Prometheus duration`);
      const ann = r.annotations as Record<string, unknown> | undefined;
      if (!ann?.summary || !ann.description)
        errs.push(`${String(r.alert)}: summary and description annotations`);
      for (const m of String(r.expr).matchAll(/\bkms_plugin_[a-z0-9_]+/g)) {
        if (!metricNames.has(m[0])) errs.push(`${String(r.alert)}: unknown metric ${m[0]}`);
      }
    }
  }
  for (const must of [
    'KmsPluginUnhealthy',
    'KmsPluginKekNotUsable',
    'KmsPluginKekScheduledForDeletion',
    'KmsPluginRemoteErrorRate',
    'KmsPluginNoSuccessfulProbe',
  ]) {
    if (!alerts.has(must)) errs.push(`missing alert ${must}`);
  }
  return errs;
}

describe('cross-file invariants of the checked-in examples', () => {
  const byFile = (f: string) => docsOf(f)[0];

  it.each([
    [
      'deploy/static-pod/k8s-kms-plugin.yaml',
      'deploy/encryption-config/local.yaml',
      'deploy/examples/config-local.yaml',
    ],
    [
      'deploy/static-pod/k8s-kms-plugin-v2beta1.yaml',
      'deploy/encryption-config/v2beta1-abstract-socket.yaml',
      'deploy/examples/config-v2beta1.yaml',
    ],
  ])('%s serves the socket %s dials', (podFile, encFile, configFile) => {
    const config = loadConfig({ file: join(root, configFile), env: {} });
    const { facts } = validatePluginPod(byFile(podFile));
    const { kms } = validateEncryptionConfiguration(byFile(encFile));
    expect(kms).toHaveLength(1);
    expect(kms[0].endpoint).toBe(config.listen);
    const socketPath = kms[0].endpoint.slice('unix://'.length);
    if (socketPath.startsWith('/@')) {
      expect(facts.socketDirs).toEqual([]);
    } else {
      expect(facts.socketDirs).toHaveLength(1);
      expect(socketPath.startsWith(`${facts.socketDirs[0]}/`)).toBe(true);
    }
    const port = Number(config.healthAddr.split(':').pop());
    expect(facts.probes.map((p) => [p.kind, p.port, p.host])).toEqual([
      ['livenessProbe', port, '127.0.0.1'],
      ['readinessProbe', port, '127.0.0.1'],
      ['startupProbe', port, '127.0.0.1'],
    ]);
  });

  it('the 1.27/1.28 variant uses statusVersion v2beta1 and an abstract socket', () => {
    const config = loadConfig({ file: join(root, 'deploy/examples/config-v2beta1.yaml'), env: {} });
    expect(config.statusVersion).toBe('v2beta1');
    expect(config.listen).toBe('unix:///@kms-plugin');
  });

  it('every provider has an EncryptionConfiguration example with apiVersion v2, no cachesize, a name without ":"', () => {
    for (const p of ['local', 'aws', 'gcp', 'azure', 'vault']) {
      const raw = readFileSync(join(root, `deploy/encryption-config/${p}.yaml`), 'utf8');
      expect(raw).not.toMatch(/cachesize/i);
      const { errs, kms } = validateEncryptionConfiguration(docsOf0(raw));
      expect([p, errs]).toEqual([p, []]);
      expect(kms[0].name).toBe(`kms-${p}`);
      expect(kms[0].endpoint).toBe(
        loadConfig({ file: join(root, `deploy/examples/config-${p}.yaml`), env: {} }).listen,
      );
    }
  });

  it('kubeadm and Cluster API mount the socket directory and the EncryptionConfiguration into the apiserver', () => {
    const config = loadConfig({ file: join(root, 'deploy/examples/config-local.yaml'), env: {} });
    const socketDir = dirname(config.listen.slice('unix://'.length));
    const capi = validateKubeadmControlPlane(byFile('deploy/cluster-api/kubeadm-control-plane.yaml')).facts;
    for (const apiServer of [
      validateKubeadmClusterConfiguration(byFile('deploy/kubeadm/cluster-configuration.yaml')).apiServer,
      validateKubeadmClusterConfiguration(byFile('deploy/kubeadm/cluster-configuration-v1beta3.yaml'))
        .apiServer,
      capi.apiServer,
    ]) {
      const encPath = apiServer.args['encryption-provider-config'];
      expect(encPath).toMatch(/^\/.+\.yaml$/);
      expect(apiServer.volumes.some((v) => v.hostPath === socketDir && v.mountPath === socketDir)).toBe(true);
      expect(
        apiServer.volumes.some((v) => encPath.startsWith(`${String(v.mountPath)}/`) && v.readOnly === true),
      ).toBe(true);
    }
    // CAPI writes the EncryptionConfiguration at the path the flag names, and no secret inline.
    const encFile = capi.files.find((f) => f.path === capi.apiServer.args['encryption-provider-config']);
    expect(encFile?.content).toEqual(expect.stringContaining('kind: EncryptionConfiguration'));
    const configFile = capi.files.find((f) => f.path === '/etc/k8s-kms-plugin/config.yaml');
    expect(configFile?.contentFrom).toBeDefined();
    expect(configFile?.content).toBeUndefined();
  });

  it('the systemd unit starts before kubelet, is hardened, and runs serve --config', () => {
    const unit = parseUnit(readFileSync(join(root, 'deploy/systemd/k8s-kms-plugin.service'), 'utf8'));
    const svc = unit.get('Service');
    expect(unit.get('Unit')?.get('Before')).toEqual(['kubelet.service']);
    expect(svc?.get('ExecStart')?.[0]).toMatch(/ serve --config \/etc\/k8s-kms-plugin\/config\.yaml$/);
    for (const [k, v] of [
      ['NoNewPrivileges', 'yes'],
      ['ProtectSystem', 'strict'],
      ['RuntimeDirectory', 'kmsplugin'],
      ['CapabilityBoundingSet', ''],
      ['PrivateTmp', 'yes'],
    ]) {
      expect([k, svc?.get(k)]).toEqual([k, [v]]);
    }
    expect(svc?.get('User')?.[0]).not.toBe('root');
  });
});
