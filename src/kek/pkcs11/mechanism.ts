/**
 * How a DEK is wrapped inside the HSM, chosen from what the token offers (C_GetMechanismInfo):
 *
 *   aes-gcm   CKM_AES_GCM via C_Encrypt/C_Decrypt, 96-bit IV, 128-bit tag, AAD binding the key
 *             label and version: one call each way. Preferred.
 *   aes-kwp   AES key wrap with padding (RFC 5649): CKM_AES_KEY_WRAP_KWP, or CKM_AES_KEY_WRAP_PAD
 *             on modules (SoftHSM) that implement RFC 5649 under that v2.40 code. The DEK is made
 *             a session object and wrapped with C_WrapKey; unwrap uses C_UnwrapKey into a session
 *             object that is read and destroyed at once.
 *   rsa-oaep  CKM_RSA_PKCS_OAEP (SHA-256, MGF1-SHA-256; SHA-1 on modules that offer only that, such
 *             as SoftHSM 2.6) with an RSA key pair: for HSMs without AES wrapping.
 *
 * Wrapped DEK = 1 byte saying which of the four (tags below) + the mechanism's output, so a token
 * that later gains or loses a mechanism still unwraps old DEKs with the one that wrapped them.
 * The crypto calls use pkcs11js's *Async functions, which run on the libuv thread pool, not on
 * the event loop.
 */
import { randomBytes } from 'node:crypto';
import type { Pkcs11Mechanism } from '../../config/providers/pkcs11.js';
import { InvalidInputError, UnauthenticatedError } from '../errors.js';
import type { KeyFamily, KeyObject } from './keys.js';
import { CKM_AES_KEY_WRAP_KWP, type Pkcs11Api, type Pkcs11Lib } from './module.js';
import type { Handle } from './session.js';

export const TAG = { gcm: 1, kwp: 2, kwpPad: 3, rsaOaep: 4, rsaOaepSha1: 5 } as const;
export type Scheme = keyof typeof TAG;

const IV = 12;
const GCM_TAG = 16;

export function schemeName(s: Scheme): string {
  switch (s) {
    case 'gcm':
      return 'CKM_AES_GCM';
    case 'kwp':
      return 'CKM_AES_KEY_WRAP_KWP';
    case 'kwpPad':
      return 'CKM_AES_KEY_WRAP_PAD';
    case 'rsaOaep':
      return 'CKM_RSA_PKCS_OAEP';
    case 'rsaOaepSha1':
      return 'CKM_RSA_PKCS_OAEP (SHA-1)';
  }
}

function mechanismCode(api: Pkcs11Api, s: Scheme): number {
  switch (s) {
    case 'gcm':
      return api.CKM_AES_GCM;
    case 'kwp':
      return CKM_AES_KEY_WRAP_KWP;
    case 'kwpPad':
      return api.CKM_AES_KEY_WRAP_PAD;
    case 'rsaOaep':
    case 'rsaOaepSha1':
      return api.CKM_RSA_PKCS_OAEP;
  }
}

/** Whether the token in `slot` offers `scheme` for both directions. */
export function supports(api: Pkcs11Api, lib: Pkcs11Lib, slot: Handle, s: Scheme): boolean {
  let flags: number;
  try {
    flags = lib.C_GetMechanismInfo(slot, mechanismCode(api, s)).flags;
  } catch {
    return false;
  }
  const both = (a: number, b: number): boolean => (flags & a) !== 0 && (flags & b) !== 0;
  if (s === 'gcm' || s === 'rsaOaep' || s === 'rsaOaepSha1') return both(api.CKF_ENCRYPT, api.CKF_DECRYPT);
  return both(api.CKF_WRAP, api.CKF_UNWRAP);
}

/** The scheme new DEKs are wrapped with, for a key family and the configured preference. */
export function chooseScheme(
  api: Pkcs11Api,
  lib: Pkcs11Lib,
  slot: Handle,
  family: KeyFamily,
  wanted: Pkcs11Mechanism,
): Scheme {
  const has = (s: Scheme): boolean => supports(api, lib, slot, s);
  if (family === 'rsa') {
    if (wanted !== 'auto' && wanted !== 'rsa-oaep')
      throw new InvalidInputError(
        `pkcs11: pkcs11.mechanism is "${wanted}" but the key label holds RSA keys; use rsa-oaep or auto`,
      );
    if (has('rsaOaep')) return 'rsaOaep';
    throw new InvalidInputError('pkcs11: the token does not offer CKM_RSA_PKCS_OAEP for its RSA KEK');
  }
  const order: Scheme[] =
    wanted === 'aes-gcm' ? ['gcm'] : wanted === 'aes-kwp' ? ['kwp', 'kwpPad'] : ['gcm', 'kwp', 'kwpPad'];
  if (wanted === 'rsa-oaep')
    throw new InvalidInputError('pkcs11: pkcs11.mechanism is "rsa-oaep" but the key label holds AES keys');
  for (const s of order) if (has(s)) return s;
  throw new InvalidInputError(
    `pkcs11: the token offers none of ${order.map(schemeName).join(', ')} for AES keys; ` +
      'set pkcs11.mechanism to rsa-oaep and create an RSA KEK (docs/providers/pkcs11.md)',
  );
}

/** Family a new key gets on this token (rotate): AES if it can wrap with AES, else RSA. */
export function familyFor(api: Pkcs11Api, lib: Pkcs11Lib, slot: Handle, wanted: Pkcs11Mechanism): KeyFamily {
  if (wanted === 'rsa-oaep') return 'rsa';
  if (wanted === 'aes-gcm' || wanted === 'aes-kwp') return 'aes';
  return (['gcm', 'kwp', 'kwpPad'] as Scheme[]).some((s) => supports(api, lib, slot, s)) ? 'aes' : 'rsa';
}

function gcmParams(api: Pkcs11Api, iv: Buffer, aad: Buffer) {
  return {
    mechanism: api.CKM_AES_GCM,
    parameter: { type: api.CK_PARAMS_AES_GCM, iv, ivBits: IV * 8, aad, tagBits: GCM_TAG * 8 },
  };
}

function oaepParams(api: Pkcs11Api, sha1 = false) {
  return {
    mechanism: api.CKM_RSA_PKCS_OAEP,
    parameter: {
      type: api.CK_PARAMS_RSA_OAEP,
      hashAlg: sha1 ? api.CKM_SHA_1 : api.CKM_SHA256,
      mgf: sha1 ? api.CKG_MGF1_SHA1 : api.CKG_MGF1_SHA256,
      source: 1, // CKZ_DATA_SPECIFIED, empty label
    },
  };
}

export async function wrapDek(
  api: Pkcs11Api,
  lib: Pkcs11Lib,
  session: Handle,
  key: KeyObject,
  scheme: Scheme,
  dek: Buffer,
  aad: Buffer,
): Promise<Buffer> {
  const tag = Buffer.from([TAG[scheme]]);
  switch (scheme) {
    case 'gcm': {
      const iv = randomBytes(IV);
      lib.C_EncryptInit(session, gcmParams(api, iv, aad), key.handle);
      const out = await lib.C_EncryptAsync(session, dek, Buffer.alloc(dek.length + GCM_TAG + 16));
      return Buffer.concat([tag, iv, out]);
    }
    case 'rsaOaep':
    case 'rsaOaepSha1': {
      let used: Scheme = scheme;
      try {
        lib.C_EncryptInit(session, oaepParams(api, scheme === 'rsaOaepSha1'), key.wrapHandle as Handle);
      } catch (err) {
        // SHA-256 OAEP refused (SoftHSM 2.6 offers SHA-1 only): fall back, and say so in the tag.
        if (
          scheme !== 'rsaOaep' ||
          !/ARGUMENTS_BAD|MECHANISM_PARAM_INVALID/.test(String((err as Error).message))
        )
          throw err;
        lib.C_EncryptInit(session, oaepParams(api, true), key.wrapHandle as Handle);
        used = 'rsaOaepSha1';
      }
      const out = await lib.C_EncryptAsync(session, dek, Buffer.alloc(Math.max(key.size, 512)));
      return Buffer.concat([Buffer.from([TAG[used]]), out]);
    }
    default: {
      const obj = lib.C_CreateObject(session, [
        { type: api.CKA_CLASS, value: api.CKO_SECRET_KEY },
        { type: api.CKA_KEY_TYPE, value: api.CKK_GENERIC_SECRET },
        { type: api.CKA_TOKEN, value: false },
        { type: api.CKA_SENSITIVE, value: false },
        { type: api.CKA_EXTRACTABLE, value: true },
        { type: api.CKA_VALUE, value: dek },
      ]);
      try {
        const out = await lib.C_WrapKeyAsync(
          session,
          { mechanism: mechanismCode(api, scheme) },
          key.handle,
          obj,
          Buffer.alloc(dek.length + 32),
        );
        return Buffer.concat([tag, out]);
      } finally {
        lib.C_DestroyObject(session, obj);
      }
    }
  }
}

/** The scheme a wrapped DEK names, checked against the key's family. */
export function schemeOf(wrapped: Buffer, family: KeyFamily): Scheme {
  const s = (Object.keys(TAG) as Scheme[]).find((k) => TAG[k] === wrapped[0]);
  if (s === undefined || wrapped.length < 2)
    throw new UnauthenticatedError('pkcs11 unwrap: the wrapped DEK is not in a format this plugin writes');
  if (s.startsWith('rsa') !== (family === 'rsa'))
    throw new UnauthenticatedError(
      `pkcs11 unwrap: the wrapped DEK was made with ${schemeName(s)}, which does not fit this ${family.toUpperCase()} key`,
    );
  if (s === 'gcm' && wrapped.length < 1 + IV + GCM_TAG + 1)
    throw new UnauthenticatedError('pkcs11 unwrap: the wrapped DEK is too short');
  return s;
}

export async function unwrapDek(
  api: Pkcs11Api,
  lib: Pkcs11Lib,
  session: Handle,
  key: KeyObject,
  scheme: Scheme,
  wrapped: Buffer,
  aad: Buffer,
): Promise<Buffer> {
  const body = wrapped.subarray(1);
  switch (scheme) {
    case 'gcm': {
      lib.C_DecryptInit(session, gcmParams(api, body.subarray(0, IV), aad), key.handle);
      const ct = body.subarray(IV);
      return Buffer.from(await lib.C_DecryptAsync(session, ct, Buffer.alloc(ct.length)));
    }
    case 'rsaOaep':
    case 'rsaOaepSha1': {
      lib.C_DecryptInit(session, oaepParams(api, scheme === 'rsaOaepSha1'), key.handle);
      return Buffer.from(await lib.C_DecryptAsync(session, body, Buffer.alloc(body.length)));
    }
    default: {
      const obj = await lib.C_UnwrapKeyAsync(
        session,
        { mechanism: mechanismCode(api, scheme) },
        key.handle,
        body,
        [
          { type: api.CKA_CLASS, value: api.CKO_SECRET_KEY },
          { type: api.CKA_KEY_TYPE, value: api.CKK_GENERIC_SECRET },
          { type: api.CKA_TOKEN, value: false },
          { type: api.CKA_SENSITIVE, value: false },
          { type: api.CKA_EXTRACTABLE, value: true },
        ],
      );
      try {
        const [v] = lib.C_GetAttributeValue(session, obj, [{ type: api.CKA_VALUE }]);
        if (!Buffer.isBuffer(v?.value)) throw new UnauthenticatedError('pkcs11 unwrap: no key value');
        const out = Buffer.from(v.value);
        v.value.fill(0);
        return out;
      } finally {
        lib.C_DestroyObject(session, obj);
      }
    }
  }
}
