/**
 * The apiserver-emulation conformance suite against real plugin processes
 * (`node dist/cli/main.js serve --provider pkcs11`) on a SoftHSM token initialised for this run in
 * a temp dir (SOFTHSM2_CONF). The KEK is made by `k8s-kms-plugin rotate --provider pkcs11`; the
 * cross-KEK check uses a second key label.
 */
import { afterAll, beforeAll, expect } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { runCli } from '../support/plugin-process.js';
import { SOFTHSM_MODULE, SoftHsm, describeSoftHsm, softHsmMissing } from '../support/softhsm.js';
import { defineApiserverConformance, pluginStarter } from './suite.js';

describeSoftHsm('pkcs11 (SoftHSM)', () => {
  if (softHsmMissing() !== undefined) return;
  const hsm = new SoftHsm();
  const token = hsm.initToken('kms-conformance');
  afterAll(() => hsm.cleanup());

  const args = (keyLabel: string): string[] => [
    ...['--pkcs11-module', SOFTHSM_MODULE, '--pkcs11-token-label', token.label],
    ...['--pkcs11-pin-file', token.pinFile, '--pkcs11-key-label', keyLabel],
  ];
  beforeAll(async () => {
    for (const label of ['k8s-conformance', 'other-kek']) {
      const r = await runCli(['rotate', '--provider', 'pkcs11', ...args(label), '--json'], hsm.env);
      if (r.code !== 0) throw new Error(`rotate --provider pkcs11 failed: ${r.stderr}`);
      expect(JSON.parse(r.stdout)).toMatchObject({ version: 1, family: 'aes', id: '00000001' });
    }
  });

  const start = pluginStarter('pkcs11', hsm.dir, { env: hsm.env });
  const startWith = (label: string, statusVersion: 'v2' | 'v2beta1') =>
    start(['--provider', 'pkcs11', ...args(label)], statusVersion);

  defineApiserverConformance({
    name: 'pkcs11',
    start: ({ statusVersion }) => startWith('k8s-conformance', statusVersion),
    startOtherKek: () => startWith('other-kek', 'v2'),
    secrets: () => [token.pin, readFileSync(token.pinFile, 'utf8').trim()],
  });
});
