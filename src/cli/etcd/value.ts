/**
 * Reading a value as stored in etcd (what `etcdctl get --print-value-only KEY` prints): which
 * storage transformer wrote it and, for KMS v2, the decoded EncryptedObject.
 */
import { readFileSync } from 'node:fs';
import { InvalidInputError } from '../../errors.js';
import { decodeEncryptedObject, type EncryptedObject } from './encrypted-object.js';

export const KMS_V2_PREFIX = 'k8s:enc:kms:v2:';

export type EtcdValue =
  | { kind: 'kms-v2'; providerName: string; object: EncryptedObject }
  | { kind: 'encrypted-other'; transformer: string; providerName: string }
  | { kind: 'identity'; encoding: 'protobuf' | 'json' | 'unknown' };

const OTHER_PREFIX = /^k8s:enc:([a-z0-9]+):(v[0-9a-z]+):([^:]*):/;

/**
 * Classifies and decodes an etcd value. etcdctl appends one newline to what it prints; it is
 * dropped when (and only when) the value does not decode with it: a protobuf message cannot end
 * in a lone 0x0a tag byte, so this never cuts a real byte.
 */
export function parseEtcdValue(raw: Buffer): EtcdValue {
  const head = raw.subarray(0, 256).toString('latin1');
  if (head.startsWith(KMS_V2_PREFIX)) {
    const end = head.indexOf(':', KMS_V2_PREFIX.length);
    if (end < 0) throw new InvalidInputError('value starts with k8s:enc:kms:v2: but has no provider name');
    const providerName = head.slice(KMS_V2_PREFIX.length, end);
    const body = raw.subarray(end + 1);
    let object: EncryptedObject;
    try {
      object = decodeEncryptedObject(body);
    } catch (err) {
      if (body.length > 0 && body[body.length - 1] === 0x0a)
        object = decodeEncryptedObject(body.subarray(0, -1));
      else throw err;
    }
    if (!object.keyID || object.encryptedDEKSource.length === 0 || object.encryptedData.length === 0) {
      throw new InvalidInputError(
        'EncryptedObject is missing keyID, encryptedDEKSource or encryptedData (truncated value?)',
      );
    }
    return { kind: 'kms-v2', providerName, object };
  }
  const other = OTHER_PREFIX.exec(head);
  if (other)
    return { kind: 'encrypted-other', transformer: `${other[1]} ${other[2]}`, providerName: other[3] };
  if (head.startsWith('k8s\0')) return { kind: 'identity', encoding: 'protobuf' };
  if (head.trimStart().startsWith('{')) return { kind: 'identity', encoding: 'json' };
  return { kind: 'identity', encoding: 'unknown' };
}

/** Reads a value from a file, or from stdin when `path` is undefined or "-". */
export async function readValue(path: string | undefined, base64: boolean): Promise<Buffer> {
  let raw: Buffer;
  if (path === undefined || path === '-') {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
    raw = Buffer.concat(chunks);
  } else {
    try {
      raw = readFileSync(path);
    } catch (err) {
      throw new InvalidInputError(`cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  if (base64) raw = Buffer.from(raw.toString('latin1').trim(), 'base64');
  if (raw.length === 0) throw new InvalidInputError('the value is empty (did etcdctl find the key?)');
  return raw;
}
