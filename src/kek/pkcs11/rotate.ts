/**
 * `rotate --provider pkcs11`: generates the next KEK version inside the token, non-extractable,
 * with the configured label and CKA_ID = previous highest version + 1 (keys.ts). Running plugins
 * adopt it through their rotation watcher (probe), like a new version in a cloud KMS.
 */
import type { Pkcs11Config } from '../../config/providers/pkcs11.js';
import { timeoutSignal } from '../../deadline.js';
import type { Logger } from '../../observability/logger.js';
import { InvalidInputError } from '../errors.js';
import { RemoteCaller } from '../remote.js';
import { classifyPkcs11Error, type Pkcs11Operation } from './errors.js';
import {
  MAX_VERSION,
  aesKeyTemplate,
  listVersions,
  rsaKeyTemplates,
  versionId,
  type KeyFamily,
} from './keys.js';
import { familyFor } from './mechanism.js';
import { Pkcs11Module } from './module.js';
import { canonicalKey } from './provider.js';
import { SessionPool } from './session.js';

export interface GeneratedVersion {
  key: string;
  keyLabel: string;
  token: string;
  version: number;
  /** CKA_ID of the new object, hex. */
  id: string;
  family: KeyFamily;
  versions: number[];
}

const ROTATE_TIMEOUT_MS = 60_000;

export async function generateNextVersion(
  config: Pkcs11Config,
  logger: Logger,
  signal: AbortSignal = timeoutSignal(ROTATE_TIMEOUT_MS),
): Promise<GeneratedVersion> {
  // One attempt (generating a key is not idempotent), bounded by `signal`, classified like every
  // other PKCS#11 call.
  const what = `pkcs11 rotate ${canonicalKey(config)}`;
  const caller = new RemoteCaller<Pkcs11Operation>({
    provider: 'pkcs11',
    classify: (err, operation) => classifyPkcs11Error(err, operation, what),
    logger,
    retry: { maxAttempts: 1, defaultDeadlineMs: ROTATE_TIMEOUT_MS },
    breaker: { failureThreshold: 0 },
  });
  const module = await Pkcs11Module.open(config.modulePath);
  const pool = new SessionPool({
    module,
    tokenLabel: config.tokenLabel,
    slot: config.slot,
    pinFile: config.pinFile,
    size: 1,
    logger,
    readWrite: true,
  });
  try {
    return await caller.call('generate_key', signal, (attempt) =>
      pool.use(attempt, 'pkcs11 rotate', async (session, slot) => {
        const { api, lib } = module;
        const { keys } = listVersions(api, lib, session, config.keyLabel);
        const highest = keys.length > 0 ? keys[keys.length - 1].version : 0;
        if (highest >= MAX_VERSION)
          throw new InvalidInputError(`pkcs11 rotate: version ${highest} is the last one`);
        const version = highest + 1;
        const family =
          keys.length > 0 ? keys[keys.length - 1].family : familyFor(api, lib, slot, config.mechanism);
        if (family === 'aes') {
          await lib.C_GenerateKeyAsync(
            session,
            { mechanism: api.CKM_AES_KEY_GEN },
            aesKeyTemplate(api, config.keyLabel, version),
          );
        } else {
          const t = rsaKeyTemplates(api, config.keyLabel, version);
          await lib.C_GenerateKeyPairAsync(
            session,
            { mechanism: api.CKM_RSA_PKCS_KEY_PAIR_GEN },
            t.publicKey,
            t.privateKey,
          );
        }
        return {
          key: canonicalKey(config),
          keyLabel: config.keyLabel,
          token: pool.token,
          version,
          id: versionId(version).toString('hex'),
          family,
          versions: [...keys.map((k) => k.version), version],
        };
      }),
    );
  } finally {
    await pool.close();
    await module.release();
  }
}
