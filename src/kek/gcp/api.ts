/**
 * The narrow slice of Cloud KMS the provider uses. The SDK-backed implementation lives in
 * ./sdk.ts; unit tests can substitute their own.
 */
import type { protos } from '@google-cloud/kms';

export type EncryptRequest = protos.google.cloud.kms.v1.IEncryptRequest;
export type EncryptResponse = protos.google.cloud.kms.v1.IEncryptResponse;
export type DecryptRequest = protos.google.cloud.kms.v1.IDecryptRequest;
export type DecryptResponse = protos.google.cloud.kms.v1.IDecryptResponse;
export type CryptoKey = protos.google.cloud.kms.v1.ICryptoKey;
export type CryptoKeyVersion = protos.google.cloud.kms.v1.ICryptoKeyVersion;

export interface CallOptions {
  /**
   * The attempt's signal from RemoteCaller: aborts the call (cancels the RPC) when it fires, and
   * carries the attempt's deadline (the gRPC deadline, see remote.ts attemptTimeLeftMs).
   */
  signal: AbortSignal;
}

export interface VersionPage {
  versions: CryptoKeyVersion[];
  /** Empty or undefined on the last page. */
  nextPageToken?: string | null;
}

export interface KmsApi {
  getCryptoKey(name: string, options: CallOptions): Promise<CryptoKey>;
  /** One page of ListCryptoKeyVersions (`filter` in Cloud KMS syntax, e.g. "state=ENABLED"). */
  listCryptoKeyVersions(
    request: { parent: string; filter?: string; pageSize?: number; pageToken?: string },
    options: CallOptions,
  ): Promise<VersionPage>;
  encrypt(request: EncryptRequest, options: CallOptions): Promise<EncryptResponse>;
  decrypt(request: DecryptRequest, options: CallOptions): Promise<DecryptResponse>;
  close(): Promise<void>;
  /**
   * Optional: resolves once the client is loaded (no remote call). The provider waits for it
   * inside the caller's deadline but outside the per-attempt timeout.
   */
  ready?(): Promise<void>;
}
