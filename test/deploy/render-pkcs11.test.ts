/**
 * `render` for `provider: pkcs11`: the static Pod mounts the PKCS#11 module and the PIN file
 * (read-only hostPath Files), and the CAPI output sources them from Secrets instead of inlining.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { runRender } from './run-render.js';
import { validateKubeadmControlPlane, validatePluginPod } from './validate.js';

const dir = mkdtempSync(join(tmpdir(), 'render-pkcs11-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = join(dir, 'pkcs11.yaml');
writeFileSync(
  config,
  [
    'provider: pkcs11',
    'pkcs11:',
    '  modulePath: /usr/lib/softhsm/libsofthsm2.so',
    '  tokenLabel: k8s-kms',
    '  pinFile: /etc/kms/pkcs11-pin',
    '  keyLabel: k8s-kms-kek',
    '',
  ].join('\n'),
);

describe('render with the pkcs11 provider', () => {
  it('mounts the module and the PIN file read-only; CAPI takes them from Secrets, never inline', async () => {
    const pod = parse(await runRender(['render', 'static-pod', '--config', config])) as {
      spec: {
        volumes: Array<{ name: string; hostPath: { path: string; type: string } }>;
        containers: Array<{ volumeMounts: Array<{ name: string; mountPath: string; readOnly?: boolean }> }>;
      };
    };
    validatePluginPod(pod);
    const files = pod.spec.volumes.filter((v) => v.hostPath.type === 'File').map((v) => v.hostPath.path);
    expect(files.sort()).toEqual(
      ['/etc/k8s-kms-plugin/config.yaml', '/etc/kms/pkcs11-pin', '/usr/lib/softhsm/libsofthsm2.so'].sort(),
    );
    const mounts = pod.spec.containers[0].volumeMounts;
    for (const path of ['/etc/kms/pkcs11-pin', '/usr/lib/softhsm/libsofthsm2.so'])
      expect(mounts.find((m) => m.mountPath === path)).toMatchObject({ readOnly: true });

    const capi = validateKubeadmControlPlane(
      parse(await runRender(['render', 'capi', '--config', config])),
    ).facts;
    const pin = capi.files.find((f) => f.path === '/etc/kms/pkcs11-pin');
    expect(pin?.contentFrom).toBeDefined();
    expect(pin?.content).toBeUndefined();
  });
});
