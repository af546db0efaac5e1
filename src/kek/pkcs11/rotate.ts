/**
 * `rotate --provider pkcs11`: generates the next KEK version inside the token, non-extractable,
 * with the configured label and CKA_ID = previous highest version + 1 (keys.ts). Running plugins
 * adopt it through their rotation watcher (probe), like a new version in a cloud KMS.
 */
import type { Pkcs11Config } from '../../config/providers/pkcs11.js';
import type { Logger } from '../../observability/logger.js';
import { InvalidInputError } from '../errors.js';
import { classifyPkcs11Error } from './errors.js';
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

export async function generateNextVersion(
  config: Pkcs11Config,
  logger: Logger,
  signal: AbortSignal = AbortSignal.timeout(60_000),
): Promise<GeneratedVersion> {
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
    return await pool.use(signal, 'pkcs11 rotate', async (session, slot) => {
      const { api, lib } = module;
      try {
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
      } catch (err) {
        throw classifyPkcs11Error(err, 'generate_key', `pkcs11 rotate ${canonicalKey(config)}`);
      }
    });
  } finally {
    await pool.close();
    await module.release();
  }
}
