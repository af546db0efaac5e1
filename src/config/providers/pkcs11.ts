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
import { duration, int, nonEmpty, type FlagSpec } from '../fields.js';

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
    modulePath: absolute('pkcs11.modulePath (the PKCS#11 module)', '/usr/lib/softhsm/libsofthsm2.so'),
    /** Label of the token holding the KEK (CK_TOKEN_INFO.label, as `pkcs11-tool -L` shows it). Set this or `slot`. */
    tokenLabel: nonEmpty('pkcs11.tokenLabel (the token label)')
      .refine((s) => Buffer.byteLength(s, 'utf8') <= 32, {
        message: 'a PKCS#11 token label has at most 32 bytes',
      })
      .optional(),
    /** Slot id (CK_SLOT_ID) of the token. Prefer `tokenLabel`: slot ids can change when tokens are re-initialised. */
    slot: int('pkcs11.slot (a slot id)', 0, Number.MAX_SAFE_INTEGER).optional(),
    /** File holding the user PIN (CKU_USER). The PIN is read only from here, re-read when the file changes. */
    pinFile: absolute('pkcs11.pinFile (a file holding the user PIN)', '/etc/kms-plugin/pkcs11-pin'),
    /** CKA_LABEL of the KEK key objects; versions are told apart by CKA_ID (docs/providers/pkcs11.md). */
    keyLabel: nonEmpty('pkcs11.keyLabel (the CKA_LABEL of the KEK)'),
    /** Wrapping mechanism: auto (AES-GCM, else AES key wrap with padding, else RSA-OAEP) or one of them. */
    mechanism: z
      .enum(PKCS11_MECHANISMS, {
        error: `expected pkcs11.mechanism to be one of: ${PKCS11_MECHANISMS.join(', ')}`,
      })
      .default('auto'),
    /** PKCS#11 sessions kept open (the most operations in flight at once). */
    sessions: int('pkcs11.sessions', 1, 64).default(4),
    /**
     * Cap on one PKCS#11 attempt, e.g. "2s". Default: none, an attempt may use all the time left
     * before the caller's deadline (minus the reply reserve). Same name for every provider.
     */
    attemptTimeout: duration('2s', { min: 50, max: 60_000 }).optional(),
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

export const pkcs11Flags: FlagSpec[] = [
  {
    name: 'pkcs11-module',
    path: ['pkcs11', 'modulePath'],
    type: 'string',
    arg: 'PATH',
    description: 'pkcs11 provider: PKCS#11 module (.so) of the HSM',
  },
  {
    name: 'pkcs11-token-label',
    path: ['pkcs11', 'tokenLabel'],
    type: 'string',
    arg: 'LABEL',
    description: 'pkcs11 provider: label of the token holding the KEK',
  },
  {
    name: 'pkcs11-slot',
    path: ['pkcs11', 'slot'],
    type: 'number',
    arg: 'N',
    description: 'pkcs11 provider: slot id (instead of the token label)',
  },
  {
    name: 'pkcs11-pin-file',
    path: ['pkcs11', 'pinFile'],
    type: 'string',
    arg: 'PATH',
    description: 'pkcs11 provider: file holding the user PIN',
  },
  {
    name: 'pkcs11-key-label',
    path: ['pkcs11', 'keyLabel'],
    type: 'string',
    arg: 'LABEL',
    description: 'pkcs11 provider: CKA_LABEL of the KEK key objects',
  },
  {
    name: 'pkcs11-mechanism',
    path: ['pkcs11', 'mechanism'],
    type: 'string',
    arg: 'MECH',
    description: `pkcs11 provider: ${PKCS11_MECHANISMS.join('|')} (default auto)`,
  },
  {
    name: 'pkcs11-attempt-timeout',
    path: ['pkcs11', 'attemptTimeout'],
    type: 'string',
    arg: 'DURATION',
    description:
      'pkcs11 provider: cap on one PKCS#11 attempt, e.g. 2s (default: the time left before the deadline)',
  },
];
