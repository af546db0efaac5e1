/**
 * No secret leaks with the pkcs11 provider on a real SoftHSM token: the PIN (and a wrong PIN put
 * into the PIN file while sessions are reopened) must appear nowhere, nor any seed, DEK or wrapped
 * DEK. Faults: the KEK disabled on the token (CKA_DECRYPT false), the token removed, and all
 * sessions lost while the PIN file holds a wrong PIN. See ./scenario.ts.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { renameSync, writeFileSync } from 'node:fs';
import { pkcs11Schema } from '../../src/config/providers/pkcs11.js';
import { generateNextVersion } from '../../src/kek/pkcs11/index.js';
import { Pkcs11Provider } from '../../src/kek/pkcs11/provider.js';
import { silentLogger } from '../../src/observability/logger.js';
import { SOFTHSM_MODULE, SoftHsm, describeSoftHsm, findKeyObject, onToken } from '../support/softhsm.js';
import { expectNoLeaks, runLeakScenario } from './scenario.js';

const WRONG_PIN = 'wrong-pin-7c1e55';

describeSoftHsm('pkcs11 leaks', () => {
  let hsm: SoftHsm;
  let token: { label: string; pin: string; pinFile: string };
  let version = 1;
  const section = () => ({
    modulePath: SOFTHSM_MODULE,
    tokenLabel: token.label,
    pinFile: token.pinFile,
    keyLabel: 'kek',
  });
  const setDecrypt = (value: boolean) =>
    onToken(token.label, token.pin, (m, s) =>
      m.lib.C_SetAttributeValue(s, findKeyObject(m, s, 'kek', version), [{ type: m.api.CKA_DECRYPT, value }]),
    );
  let away = '';
  let dir = '';

  beforeAll(async () => {
    hsm = await new SoftHsm().activate();
    token = hsm.initToken('kms-leaks', 'leak-pin-5a9d31');
    hsm.aesKey(token.label, token.pin, 'kek', 1);
  });
  afterAll(() => hsm.cleanup());

  test('pkcs11: no seed, DEK, wrapped DEK or PIN in logs, metrics, health pages or errors', async () => {
    const report = await runLeakScenario({
      config: () => ({ provider: 'pkcs11', pkcs11: section() }),
      proto: Pkcs11Provider.prototype,
      rotateKek: async () => {
        const g = await generateNextVersion(pkcs11Schema.parse(section()), silentLogger());
        version = g.version;
      },
      faults: [
        {
          name: 'key disabled (CKA_DECRYPT false)',
          inject: () => setDecrypt(false),
          clear: () => setDecrypt(true),
        },
        {
          name: 'token removed',
          inject: () => {
            [dir] = hsm.tokenDirs();
            away = `${hsm.dir}/away`;
            renameSync(dir, away);
          },
          clear: () => renameSync(away, dir),
        },
        {
          name: 'sessions lost, wrong PIN in the PIN file',
          inject: async () => {
            writeFileSync(token.pinFile, `${WRONG_PIN}\n`);
            await onToken(token.label, token.pin, (m, _s, slot) => m.lib.C_CloseAllSessions(slot));
          },
          clear: () => writeFileSync(token.pinFile, `${token.pin}\n`),
        },
      ],
      secrets: () => [
        ['user PIN', token.pin],
        ['wrong PIN', WRONG_PIN],
        ['SO PIN', 'so-pin-k8s-kms-4f1d'],
      ],
    });
    expect(version).toBeGreaterThanOrEqual(2);
    expectNoLeaks(report, 3);
  }, 90_000);
});
