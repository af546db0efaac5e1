/**
 * KEK versions as PKCS#11 objects.
 *
 * Version scheme: every version is its own key object with the configured CKA_LABEL; its CKA_ID
 * is the version number as 4 bytes, big-endian (version 1 = 00000001, version 2 = 00000002).
 * Objects with the label but another CKA_ID shape are ignored (and reported once). The highest
 * version is the primary. `pkcs11-tool --id $(printf %08x N)` makes version N.
 *
 * Families: AES keys (CKO_SECRET_KEY, CKK_AES, 32 bytes) for AES-GCM or AES key wrap; RSA key
 * pairs (CKO_PRIVATE_KEY + CKO_PUBLIC_KEY with the same label and id) for RSA-OAEP on HSMs
 * without AES wrapping. One label holds one family.
 *
 * State: CKA_DECRYPT or CKA_UNWRAP false → disabled; object missing → destroyed.
 */
import type { Pkcs11Api, Pkcs11Lib } from './module.js';
import type { Handle } from './session.js';

export const MAX_VERSION = 0xffff_ffff;

export type KeyFamily = 'aes' | 'rsa';

export function versionId(version: number): Buffer {
  if (!Number.isSafeInteger(version) || version < 1 || version > MAX_VERSION)
    throw new RangeError(`pkcs11 key version out of range: ${version}`);
  const b = Buffer.alloc(4);
  b.writeUInt32BE(version, 0);
  return b;
}

export function parseVersionId(id: Buffer | undefined): number | undefined {
  if (!id || id.length !== 4) return undefined;
  const v = id.readUInt32BE(0);
  return v >= 1 ? v : undefined;
}

export interface KeyObject {
  version: number;
  family: KeyFamily;
  /** The object that unwraps (secret key, or RSA private key). */
  handle: Handle;
  /** The object that wraps (the secret key itself, or the RSA public key; undefined if missing). */
  wrapHandle: Handle | undefined;
  keyType: number;
  /** Secret key length in bytes, or RSA modulus bits / 8. */
  size: number;
  canEncrypt: boolean;
  canDecrypt: boolean;
  canWrap: boolean;
  canUnwrap: boolean;
  sensitive: boolean;
  extractable: boolean;
  /** CKA_CHECK_VALUE as hex where the token offers it (a 3-byte key check value: not secret). */
  checkValue: string | undefined;
}

export interface Listing {
  keys: KeyObject[];
  /** Objects with the label but a CKA_ID that is not a version (count). */
  ignored: number;
}

function findAll(
  lib: Pkcs11Lib,
  session: Handle,
  template: Array<{ type: number; value: unknown }>,
): Handle[] {
  lib.C_FindObjectsInit(session, template as never);
  try {
    const out: Handle[] = [];
    for (;;) {
      const batch = lib.C_FindObjects(session, 64);
      out.push(...batch);
      if (batch.length < 64) return out;
    }
  } finally {
    lib.C_FindObjectsFinal(session);
  }
}

function attr(lib: Pkcs11Lib, session: Handle, obj: Handle, type: number): Buffer | undefined {
  try {
    const [a] = lib.C_GetAttributeValue(session, obj, [{ type }]);
    return Buffer.isBuffer(a?.value) ? a.value : undefined;
  } catch {
    return undefined; // CKR_ATTRIBUTE_TYPE_INVALID / SENSITIVE: not offered
  }
}

function bool(b: Buffer | undefined, dflt: boolean): boolean {
  return b === undefined || b.length === 0 ? dflt : b[0] !== 0;
}

function ulong(b: Buffer | undefined): number {
  if (!b || b.length === 0) return 0;
  if (b.length >= 8) return Number(b.readBigUInt64LE(0));
  return b.readUInt32LE(0);
}

/** Every version of `label` on the token, sorted by version (oldest first). */
export function listVersions(api: Pkcs11Api, lib: Pkcs11Lib, session: Handle, label: string): Listing {
  let family: KeyFamily = 'aes';
  let objects = findAll(lib, session, [
    { type: api.CKA_CLASS, value: api.CKO_SECRET_KEY },
    { type: api.CKA_LABEL, value: label },
  ]);
  if (objects.length === 0) {
    family = 'rsa';
    objects = findAll(lib, session, [
      { type: api.CKA_CLASS, value: api.CKO_PRIVATE_KEY },
      { type: api.CKA_LABEL, value: label },
    ]);
  }
  const keys: KeyObject[] = [];
  let ignored = 0;
  const seen = new Set<number>();
  for (const h of objects) {
    const version = parseVersionId(attr(lib, session, h, api.CKA_ID));
    if (version === undefined || seen.has(version)) {
      ignored += 1;
      continue;
    }
    seen.add(version);
    keys.push(describe(api, lib, session, h, version, family, label));
  }
  keys.sort((a, b) => a.version - b.version);
  return { keys, ignored };
}

/** One version, or undefined if its object is gone. */
export function findVersion(
  api: Pkcs11Api,
  lib: Pkcs11Lib,
  session: Handle,
  label: string,
  version: number,
): KeyObject | undefined {
  const id = versionId(version);
  for (const [family, cls] of [
    ['aes', api.CKO_SECRET_KEY],
    ['rsa', api.CKO_PRIVATE_KEY],
  ] as const) {
    const [h] = findAll(lib, session, [
      { type: api.CKA_CLASS, value: cls },
      { type: api.CKA_LABEL, value: label },
      { type: api.CKA_ID, value: id },
    ]);
    if (h) return describe(api, lib, session, h, version, family, label);
  }
  return undefined;
}

function describe(
  api: Pkcs11Api,
  lib: Pkcs11Lib,
  session: Handle,
  h: Handle,
  version: number,
  family: KeyFamily,
  label: string,
): KeyObject {
  const a = (t: number): Buffer | undefined => attr(lib, session, h, t);
  let wrapHandle: Handle | undefined = h;
  let size: number;
  let canEncrypt: boolean;
  let canWrap: boolean;
  if (family === 'rsa') {
    [wrapHandle] = findAll(lib, session, [
      { type: api.CKA_CLASS, value: api.CKO_PUBLIC_KEY },
      { type: api.CKA_LABEL, value: label },
      { type: api.CKA_ID, value: versionId(version) },
    ]);
    size = Math.ceil((a(api.CKA_MODULUS)?.length ?? 0) || ulong(a(api.CKA_MODULUS_BITS)) / 8);
    canEncrypt = wrapHandle ? bool(attr(lib, session, wrapHandle, api.CKA_ENCRYPT), false) : false;
    canWrap = wrapHandle ? bool(attr(lib, session, wrapHandle, api.CKA_WRAP), false) : false;
  } else {
    size = ulong(a(api.CKA_VALUE_LEN));
    canEncrypt = bool(a(api.CKA_ENCRYPT), false);
    canWrap = bool(a(api.CKA_WRAP), false);
  }
  const check = family === 'aes' ? a(api.CKA_CHECK_VALUE) : undefined;
  return {
    version,
    family,
    handle: h,
    wrapHandle,
    keyType: ulong(a(api.CKA_KEY_TYPE)),
    size,
    canEncrypt,
    canDecrypt: bool(a(api.CKA_DECRYPT), false),
    canWrap,
    canUnwrap: bool(a(api.CKA_UNWRAP), false),
    sensitive: bool(a(api.CKA_SENSITIVE), true),
    extractable: bool(a(api.CKA_EXTRACTABLE), false),
    checkValue: check && check.length > 0 ? check.toString('hex') : undefined,
  };
}

/**
 * Why a version cannot be used, or undefined if it can. CKA_DECRYPT or CKA_UNWRAP false means
 * disabled (the documented way to disable a version on the token).
 */
export function disabledReason(api: Pkcs11Api, k: KeyObject): string | undefined {
  if (!k.canDecrypt || !k.canUnwrap) {
    const off = [!k.canDecrypt && 'CKA_DECRYPT', !k.canUnwrap && 'CKA_UNWRAP'].filter(Boolean).join(' and ');
    return `${off} ${off.includes(' and ') ? 'are' : 'is'} false on version ${k.version}`;
  }
  if (k.family === 'aes' && (k.keyType !== api.CKK_AES || k.size !== 32))
    return `version ${k.version} is not a 256-bit AES key`;
  if (k.family === 'rsa' && (k.keyType !== api.CKK_RSA || k.size < 256))
    return `version ${k.version} is not an RSA key of at least 2048 bits`;
  if (!k.wrapHandle) return `version ${k.version} has no public key object (RSA)`;
  if (!k.canEncrypt && !k.canWrap) return `CKA_ENCRYPT and CKA_WRAP are false on version ${k.version}`;
  return undefined;
}

/** Template for a new non-extractable AES-256 KEK version on the token. */
export function aesKeyTemplate(api: Pkcs11Api, label: string, version: number) {
  return [
    { type: api.CKA_CLASS, value: api.CKO_SECRET_KEY },
    { type: api.CKA_KEY_TYPE, value: api.CKK_AES },
    { type: api.CKA_VALUE_LEN, value: 32 },
    { type: api.CKA_TOKEN, value: true },
    { type: api.CKA_PRIVATE, value: true },
    { type: api.CKA_SENSITIVE, value: true },
    { type: api.CKA_EXTRACTABLE, value: false },
    { type: api.CKA_MODIFIABLE, value: true },
    { type: api.CKA_ENCRYPT, value: true },
    { type: api.CKA_DECRYPT, value: true },
    { type: api.CKA_WRAP, value: true },
    { type: api.CKA_UNWRAP, value: true },
    { type: api.CKA_LABEL, value: label },
    { type: api.CKA_ID, value: versionId(version) },
  ];
}

/** Templates for a new RSA-3072 key pair (public, private). */
export function rsaKeyTemplates(api: Pkcs11Api, label: string, version: number) {
  const common = [
    { type: api.CKA_TOKEN, value: true },
    { type: api.CKA_LABEL, value: label },
    { type: api.CKA_ID, value: versionId(version) },
  ];
  return {
    publicKey: [
      ...common,
      { type: api.CKA_CLASS, value: api.CKO_PUBLIC_KEY },
      { type: api.CKA_KEY_TYPE, value: api.CKK_RSA },
      { type: api.CKA_MODULUS_BITS, value: 3072 },
      { type: api.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
      { type: api.CKA_ENCRYPT, value: true },
      { type: api.CKA_WRAP, value: true },
    ],
    privateKey: [
      ...common,
      { type: api.CKA_CLASS, value: api.CKO_PRIVATE_KEY },
      { type: api.CKA_KEY_TYPE, value: api.CKK_RSA },
      { type: api.CKA_PRIVATE, value: true },
      { type: api.CKA_SENSITIVE, value: true },
      { type: api.CKA_EXTRACTABLE, value: false },
      { type: api.CKA_DECRYPT, value: true },
      { type: api.CKA_UNWRAP, value: true },
    ],
  };
}
