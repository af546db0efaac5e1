/**
 * The `pkcs11:` section: a KEK held in an HSM (or TPM, or SoftHSM) through its PKCS#11 module.
 *
 * ```yaml
 * provider: pkcs11
 * pkcs11:
 *   modulePath: /usr/lib/softhsm/libsofthsm2.so   # the vendor's PKCS#11 library
 *   tokenLabel: k8s-kms                            # or slot: 0
 *   pinFile: /etc/kms-plugin/pkcs11-pin            # the user PIN, read only from this file
 *   keyLabel: k8s-kms-kek                          # CKA_LABEL of the KEK versions
 * ```
 *
 * See docs/providers/pkcs11.md for the key version scheme (CKA_ID) and vendor notes.
 */
import { z } from 'zod';
import { int, nonEmpty, remoteCallFields, type ProviderSection } from '../fields.js';

export const PKCS11_MECHANISMS = ['auto', 'aes-gcm', 'aes-kwp', 'rsa-oaep'] as const;
export type Pkcs11Mechanism = (typeof PKCS11_MECHANISMS)[number];

function absolute(what: string, example: string) {
  return nonEmpty(`${what}, e.g. "${example}"`).refine((s) => s.startsWith('/'), {
    message: `expected an absolute path for ${what}, e.g. "${example}"`,
  });
}

export const pkcs11Schema = z
  .strictObject({
    /** Absolute path of the vendor's PKCS#11 module (shared library), e.g. /usr/lib/softhsm/libsofthsm2.so. */
    modulePath: absolute('pkcs11.modulePath (the PKCS#11 module)', '/usr/lib/softhsm/libsofthsm2.so').meta({
      flag: { name: 'pkcs11-module', arg: 'PATH', help: 'PKCS#11 module (.so) of the HSM' },
    }),
    /** Label of the token holding the KEK (CK_TOKEN_INFO.label, as `pkcs11-tool -L` shows it). Set this or `slot`. */
    tokenLabel: nonEmpty('pkcs11.tokenLabel (the token label)')
      .refine((s) => Buffer.byteLength(s, 'utf8') <= 32, {
        message: 'a PKCS#11 token label has at most 32 bytes',
      })
      .optional()
      .meta({ flag: { arg: 'LABEL', help: 'label of the token holding the KEK' } }),
    /** Slot id (CK_SLOT_ID) of the token. Prefer `tokenLabel`: slot ids can change when tokens are re-initialised. */
    slot: int('pkcs11.slot (a slot id)', 0, Number.MAX_SAFE_INTEGER)
      .optional()
      .meta({ flag: { arg: 'N', help: 'slot id (instead of the token label)' } }),
    /** File holding the user PIN (CKU_USER). The PIN is read only from here, re-read when the file changes. */
    pinFile: absolute('pkcs11.pinFile (a file holding the user PIN)', '/etc/kms-plugin/pkcs11-pin').meta({
      flag: { arg: 'PATH', help: 'file holding the user PIN' },
    }),
    /** CKA_LABEL of the KEK key objects; versions are told apart by CKA_ID (docs/providers/pkcs11.md). */
    keyLabel: nonEmpty('pkcs11.keyLabel (the CKA_LABEL of the KEK)').meta({
      flag: { arg: 'LABEL', help: 'CKA_LABEL of the KEK key objects' },
    }),
    /** Wrapping mechanism: auto (AES-GCM, else AES key wrap with padding, else RSA-OAEP) or one of them. */
    mechanism: z
      .enum(PKCS11_MECHANISMS, {
        error: `expected pkcs11.mechanism to be one of: ${PKCS11_MECHANISMS.join(', ')}`,
      })
      .default('auto')
      .meta({ flag: { arg: 'MECH', help: `${PKCS11_MECHANISMS.join('|')} (default auto)` } }),
    ...remoteCallFields('pkcs11', {
      service: 'PKCS#11',
      concurrency: {
        default: 4,
        max: 64,
        help: 'PKCS#11 sessions kept open, and so the most operations in flight at once (was `sessions`). Same name for every provider.',
      },
    }),
  })
  .superRefine((v, ctx) => {
    if ((v.tokenLabel === undefined) === (v.slot === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['tokenLabel'],
        message:
          v.tokenLabel === undefined
            ? 'is required: set pkcs11.tokenLabel (--pkcs11-token-label) or pkcs11.slot (--pkcs11-slot)'
            : 'pkcs11.tokenLabel and pkcs11.slot are exclusive: set one of them',
      });
    }
  });
export type Pkcs11Config = z.output<typeof pkcs11Schema>;
export type Pkcs11ConfigInput = z.input<typeof pkcs11Schema>;

export const pkcs11Section = {
  schema: pkcs11Schema,
  aliases: { sessions: 'concurrency' },
} satisfies ProviderSection;
