/**
 * The AWS KMS KEK provider.
 *
 * - wrap = Encrypt(KeyId = the resolved key ARN, EncryptionContext); unwrap = Decrypt with KeyId
 *   pinned to the ref's key ARN and the same EncryptionContext, so a DEK wrapped under another key
 *   or another context fails closed.
 * - AWS picks the key material itself: Encrypt always uses the key's current material and Decrypt
 *   finds the material from the ciphertext. The ref's `version` is therefore a label of the material
 *   that was current when the version was resolved (it drives key_id), not a selector. If AWS
 *   rotates between currentVersion() and wrap(), the DEK is wrapped with the newer material but
 *   labelled with the older version; that is harmless: Decrypt works for every material, and the
 *   next probe moves key_id on.
 * - canUnwrap(ref): an `aws` ref whose EncryptionContext fingerprint matches this provider's, and
 *   whose key ARN is the configured key, a key ARN this process resolved the configured key/alias
 *   to, one of aws.decryptKeyArns, or, when aws.keyId is an alias, any key in the alias's region
 *   (and account, once known), so DEKs wrapped before the alias was repointed still unwrap after a
 *   restart.
 */
import {
  DecryptCommand,
  EncryptCommand,
  type DecryptCommandOutput,
  type EncryptCommandOutput,
  type KMSClient,
} from '@aws-sdk/client-kms';
import type { Logger } from '../../observability/logger.js';
import type { ProviderMetrics } from '../../observability/metrics.js';
import { assertUnwrapRef, assertWrapRef } from '../ownership.js';
import { attemptTimeLeftMs, type RemoteCaller } from '../remote.js';
import { OptionalCalls, type OptionalCallIssue } from '../optional.js';
import { CorruptError, InvalidInputError, KeyDisabledError } from '../errors.js';
import { type KekProvider, type KekRef, type KeyVersionInfo, type WrapResult } from '../types.js';
import type { KeyIdentifier } from '../../config/providers/aws-identifiers.js';
import { parseKeyArn } from '../../config/providers/aws-identifiers.js';
import { contextFingerprint, decodeUnique, encodeUnique, materialIdVersion, materialVersion } from './ref.js';
import { mapKeyState } from './state.js';
import { describeKey, latestRotation, type Send } from './version.js';
import { updateTtl, type CredentialSource } from './credentials.js';

export interface AwsProviderOptions {
  client: KMSClient;
  credentials: CredentialSource;
  identifier: KeyIdentifier;
  region: string;
  encryptionContext: Record<string, string>;
  decryptKeyArns: string[];
  caller: RemoteCaller;
  description: string;
  logger: Logger;
  metrics: ProviderMetrics;
  role: string;
}

export class AwsKmsProvider implements KekProvider {
  readonly kind = 'aws' as const;
  readonly description: string;
  private readonly ctxFp: string;
  /** Key ARNs the configured key id/alias resolved to in this process. */
  private readonly resolved = new Set<string>();
  private readonly extra: Set<string>;
  private readonly lastVersion = new Map<string, string>();
  /** key ARN → material id → ordinal, for materials named by DescribeKey's CurrentKeyMaterialId. */
  private readonly materialOrdinals = new Map<string, Map<string, number>>();
  private account: string | undefined;
  private closed = false;
  private readonly optional: OptionalCalls;

  constructor(private readonly o: AwsProviderOptions) {
    this.description = o.description;
    this.ctxFp = contextFingerprint(o.encryptionContext);
    this.extra = new Set(o.decryptKeyArns);
    this.account = o.identifier.account;
    this.optional = new OptionalCalls({ provider: 'aws', logger: o.logger, metrics: o.metrics });
  }

  optionalIssues(): OptionalCallIssue[] {
    return this.optional.issues();
  }

  /**
   * One KMS command on `what` through RemoteCaller (deadline, attempt timeout, bounded retries,
   * Retry-After, concurrency, breaker, classification, metrics).
   */
  private send(signal: AbortSignal, what: string): Send {
    // The SDK's send is typed per command; the union of our commands all return output objects.
    const send = this.o.client.send.bind(this.o.client) as <T>(
      command: unknown,
      options: { abortSignal: AbortSignal; requestTimeout: number },
    ) => Promise<T>;
    return <T>(operation: string, command: unknown): Promise<T> =>
      this.o.caller.call(
        operation,
        signal,
        (attempt) => send<T>(command, { abortSignal: attempt, requestTimeout: attemptTimeLeftMs(attempt) }),
        what,
      );
  }

  async currentVersion(signal: AbortSignal): Promise<KeyVersionInfo> {
    const send = this.send(signal, this.o.identifier.raw);
    const key = await describeKey(send, this.o.identifier.raw);
    const arn = parseKeyArn(key.arn);
    if (!arn)
      throw new CorruptError(`aws DescribeKey ${this.o.identifier.raw}: returned a malformed key ARN`);
    if (arn.region !== this.o.region) {
      throw new InvalidInputError(
        `aws key ${key.arn} is in ${arn.region}, but the plugin talks to ${this.o.region}; set aws.region to the key's region`,
      );
    }
    this.account ??= arn.account;
    this.resolved.add(key.arn);

    const mapped = mapKeyState(key.keyState, key.enabled, key.arn, key.deletionDate);
    let version: string;
    let ordinal: number;
    if (key.currentKeyMaterialId !== undefined) {
      // One call per probe: DescribeKey names the current material.
      version = materialIdVersion(key.currentKeyMaterialId);
      ordinal = this.materialOrdinal(key.arn, key.currentKeyMaterialId, key.creationDate);
    } else {
      let rotatedAt: Date | undefined;
      if (mapped.state === 'enabled') {
        // ListKeyRotations only labels the material: optional. Refused → the last label (or the
        // original material's), one warning naming kms:ListKeyRotations, retried at most hourly.
        const got = await this.optional.run('ListKeyRotations', 'kms:ListKeyRotations', async () => ({
          at: await latestRotation(this.send(signal, key.arn), key.arn),
        }));
        rotatedAt = got?.at;
        version = got
          ? materialVersion(rotatedAt)
          : (this.lastVersion.get(key.arn) ?? materialVersion(undefined));
      } else {
        // Some states refuse management calls; the key is unusable then anyway. Keep the last label.
        try {
          rotatedAt = await latestRotation(this.send(signal, key.arn), key.arn);
          version = materialVersion(rotatedAt);
        } catch {
          version = this.lastVersion.get(key.arn) ?? 'unknown';
        }
      }
      ordinal = Math.max(key.creationDate.getTime(), rotatedAt?.getTime() ?? 0);
    }
    this.lastVersion.set(key.arn, version);

    const ref: KekRef = {
      provider: 'aws',
      key: key.arn,
      version,
      unique: encodeUnique({
        created: key.creationDate.toISOString(),
        alias: this.o.identifier.aliasName,
        ctx: this.ctxFp,
      }),
    };
    updateTtl(this.o.metrics, this.o.credentials.expiration());
    return { ref, state: mapped.state, ...(mapped.detail ? { detail: mapped.detail } : {}), ordinal };
  }

  /**
   * An ordinal for a key material known only by its id (DescribeKey does not date it): the key's
   * creation time for the first material this process sees, and for each later one a value above
   * every ordinal seen so far for the key (the time it was first seen). A material seen before keeps
   * its ordinal, so a primary that moved back to it reads as a rollback. Ordinals are compared only
   * within one process, by the rotation watcher; key_id does not depend on them.
   */
  private materialOrdinal(arn: string, materialId: string, created: Date): number {
    let seen = this.materialOrdinals.get(arn);
    if (!seen) {
      seen = new Map();
      this.materialOrdinals.set(arn, seen);
    }
    const known = seen.get(materialId);
    if (known !== undefined) return known;
    const ordinal =
      seen.size === 0 ? created.getTime() : Math.max(Date.now(), Math.max(...seen.values()) + 1);
    seen.set(materialId, ordinal);
    return ordinal;
  }

  async wrap(dek: Buffer, version: KeyVersionInfo, signal: AbortSignal): Promise<WrapResult> {
    const ref = version.ref;
    const sameContext = decodeUnique(ref.unique).ctx === this.ctxFp;
    assertWrapRef(this, ref, {
      why: sameContext ? undefined : 'it was resolved with a different EncryptionContext; resolve it again',
    });
    if (version.state !== 'enabled') {
      throw new KeyDisabledError(
        `aws wrap: key ${ref.key} is ${version.state}; ${version.detail ?? 'new DEKs need an enabled key'}`,
      );
    }
    const out = await this.send(signal, ref.key)<EncryptCommandOutput>(
      'Encrypt',
      new EncryptCommand({ KeyId: ref.key, Plaintext: dek, EncryptionContext: this.o.encryptionContext }),
    );
    if (!out.CiphertextBlob || out.CiphertextBlob.length === 0) {
      throw new CorruptError(`aws Encrypt ${ref.key}: the answer has no CiphertextBlob`);
    }
    if (out.KeyId !== ref.key) {
      throw new CorruptError(
        `aws Encrypt ${ref.key}: AWS answered for a different key (${String(out.KeyId)})`,
      );
    }
    return { wrapped: Buffer.from(out.CiphertextBlob), ref };
  }

  async unwrap(wrapped: Buffer, ref: KekRef, signal: AbortSignal): Promise<Buffer> {
    const ctx = decodeUnique(ref.unique).ctx;
    assertUnwrapRef(
      this,
      ref,
      ref.provider === 'aws' && ctx !== undefined && ctx !== this.ctxFp
        ? 'it was wrapped with a different EncryptionContext; add a decryptOnly aws entry with the old context'
        : 'add the key ARN to aws.decryptKeyArns or a decryptOnly entry',
    );
    if (wrapped.length === 0) throw new CorruptError(`aws unwrap ${ref.key}: empty wrapped DEK`);
    const out = await this.send(signal, ref.key)<DecryptCommandOutput>(
      'Decrypt',
      new DecryptCommand({
        CiphertextBlob: wrapped,
        KeyId: ref.key,
        EncryptionContext: this.o.encryptionContext,
        EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
      }),
    );
    const plain = out.Plaintext;
    if (!plain || plain.length === 0)
      throw new CorruptError(`aws Decrypt ${ref.key}: the answer has no Plaintext`);
    const dek = Buffer.from(plain);
    plain.fill(0);
    if (out.KeyId !== undefined && out.KeyId !== ref.key) {
      dek.fill(0);
      throw new CorruptError(`aws Decrypt ${ref.key}: AWS answered for a different key (${out.KeyId})`);
    }
    return dek;
  }

  canUnwrap(ref: KekRef): boolean {
    if (ref.provider !== 'aws') return false;
    const arn = parseKeyArn(ref.key);
    if (!arn) return false;
    if (decodeUnique(ref.unique).ctx !== this.ctxFp) return false;
    if (this.resolved.has(ref.key) || this.extra.has(ref.key)) return true;
    const id = this.o.identifier;
    if (arn.region !== this.o.region) return false;
    if (id.kind === 'key-arn') return ref.key === id.raw;
    if (id.kind === 'key-id')
      return arn.keyId === id.keyId && (this.account === undefined || arn.account === this.account);
    // An alias: any key of its account in its region (the alias may have pointed elsewhere before).
    return this.account === undefined || arn.account === this.account;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.o.client.destroy();
    this.o.credentials.close();
  }
}
