/**
 * `inspect`: what protects one etcd value, without any secret and without any KMS call:
 * the EncryptionConfiguration provider name, key_id, the KEK reference and key-id generation from
 * our annotation, the DEK id, our ciphertext format version and the apiserver's DEK-source type.
 */
import type { Command } from 'commander';
import { decodeAnnotations } from '../envelope/annotations.js';
import { dekIdOf } from '../envelope/envelope.js';
import { deriveKeyId } from '../envelope/keyid.js';
import { FORMAT_V1, FORMAT_V2 } from '../envelope/wire.js';
import { asPluginError } from '../errors.js';
import type { KekRef } from '../kek/types.js';
import { DEK_SOURCE_TYPE_NAMES, type DekSourceType } from './etcd/encrypted-object.js';
import { parseEtcdValue, readValue } from './etcd/value.js';

export interface Inspection {
  /** How the value is stored: kms-v2, another encryption transformer, or not encrypted. */
  storage: 'kms-v2' | 'encrypted-other' | 'identity';
  /** EncryptionConfiguration provider name (kms.name) from the etcd prefix. */
  providerName?: string;
  /** For encrypted-other: e.g. "aescbc v1", "kms v1", "secretbox v1". */
  transformer?: string;
  /** For identity: protobuf, json or unknown. */
  encoding?: string;
  keyId?: string;
  dekSourceType?: DekSourceType;
  dekSourceTypeName?: string;
  encryptedDataBytes?: number;
  /** True if the annotations are ours (k8s-kms-plugin). */
  ours?: boolean;
  /** Why the annotations are not ours, if they are not. */
  notOursReason?: string;
  annotationKeys?: string[];
  kek?: KekRef;
  keyIdGeneration?: number;
  /** key_id recomputed from the KEK reference and generation equals the stored key_id. */
  keyIdConsistent?: boolean;
  dekId?: string;
  /** First byte of our ciphertext (1 = the current format). */
  formatVersion?: number;
  formatKnown?: boolean;
  ciphertextBytes?: number;
}

export function inspectValue(raw: Buffer): Inspection {
  const v = parseEtcdValue(raw);
  if (v.kind === 'identity') return { storage: 'identity', encoding: v.encoding };
  if (v.kind === 'encrypted-other') {
    return { storage: 'encrypted-other', transformer: v.transformer, providerName: v.providerName };
  }
  const o = v.object;
  const out: Inspection = {
    storage: 'kms-v2',
    providerName: v.providerName,
    keyId: o.keyID,
    dekSourceType: o.encryptedDEKSourceType,
    dekSourceTypeName: DEK_SOURCE_TYPE_NAMES[o.encryptedDEKSourceType],
    encryptedDataBytes: o.encryptedData.length,
    annotationKeys: Object.keys(o.annotations).sort(),
    ciphertextBytes: o.encryptedDEKSource.length,
  };
  try {
    const env = decodeAnnotations(o.annotations);
    out.ours = true;
    out.kek = env.ref;
    out.keyIdGeneration = env.generation;
    out.keyIdConsistent = deriveKeyId(env.ref, env.generation) === o.keyID;
    out.dekId = dekIdOf(env.wrapped);
    out.formatVersion = o.encryptedDEKSource[0];
    out.formatKnown = out.formatVersion === FORMAT_V1 || out.formatVersion === FORMAT_V2;
  } catch (err) {
    out.ours = false;
    out.notOursReason = asPluginError(err).message;
  }
  return out;
}

export function formatInspection(i: Inspection): string {
  const lines: Array<[string, string]> = [];
  if (i.storage === 'identity') {
    lines.push(['storage', `NOT ENCRYPTED (identity; ${i.encoding} encoding)`]);
  } else if (i.storage === 'encrypted-other') {
    lines.push(['storage', `encrypted by ${i.transformer} (provider "${i.providerName}"), not KMS v2`]);
  } else {
    lines.push(['storage', 'KMS v2']);
    lines.push(['provider name', String(i.providerName)]);
    lines.push(['key_id', String(i.keyId)]);
    lines.push(['dek source type', `${i.dekSourceType} (${i.dekSourceTypeName})`]);
    if (i.ours && i.kek) {
      lines.push(['plugin', 'k8s-kms-plugin']);
      lines.push(['kek provider', i.kek.provider]);
      lines.push(['kek key', i.kek.key]);
      lines.push(['kek version', i.kek.version]);
      if (i.kek.unique !== undefined) lines.push(['kek unique', i.kek.unique]);
      lines.push(['key-id generation', String(i.keyIdGeneration)]);
      lines.push([
        'key_id check',
        i.keyIdConsistent ? 'matches the KEK reference' : 'DOES NOT MATCH the KEK reference (value altered?)',
      ]);
      lines.push(['dek id', String(i.dekId)]);
      lines.push([
        'format version',
        `${i.formatVersion}${i.formatKnown ? '' : ' (UNKNOWN to this version)'}`,
      ]);
      lines.push(['ciphertext bytes', String(i.ciphertextBytes)]);
    } else {
      lines.push(['plugin', `not k8s-kms-plugin (${i.notOursReason ?? 'unknown annotations'})`]);
      lines.push(['annotations', (i.annotationKeys ?? []).join(', ') || '(none)']);
    }
    lines.push(['object bytes', String(i.encryptedDataBytes)]);
  }
  const width = Math.max(...lines.map(([k]) => k.length));
  return lines.map(([k, v]) => `${`${k}:`.padEnd(width + 2)}${v}`).join('\n') + '\n';
}

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description(
      'show what protects an etcd value (as `etcdctl get --print-value-only KEY` prints it): provider name, key_id, ' +
        'KEK reference, DEK id, format and DEK-source type. Prints no secrets and calls no KMS',
    )
    .option('--value-file <FILE>', 'file holding the raw value ("-" or omitted: stdin)')
    .option('--base64', 'the value is base64 (e.g. from `etcdctl get -w json`)')
    .option('--json', 'print JSON')
    .action(async (opts: { valueFile?: string; base64?: boolean; json?: boolean }) => {
      const raw = await readValue(opts.valueFile, opts.base64 === true);
      const i = inspectValue(raw);
      process.stdout.write(opts.json ? `${JSON.stringify(i)}\n` : formatInspection(i));
    });
}
