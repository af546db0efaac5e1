/**
 * The KMS v2 API (proto/v2/api.proto): method paths, message shapes (field names stay snake_case,
 * e.g. key_id, as proto-loader's keepCase gives them) and the grpc-js service definition, whose
 * codecs are hand-written in ./codec.ts (proto-loader is only the reference in the tests).
 */
import type { ServiceDefinition } from '@grpc/grpc-js';
import { fileURLToPath } from 'node:url';
import { KMS_SERVICE } from './codec.js';

export const PROTO_PATH = fileURLToPath(new URL('../../proto/v2/api.proto', import.meta.url));

export const METHODS = {
  status: '/v2.KeyManagementService/Status',
  encrypt: '/v2.KeyManagementService/Encrypt',
  decrypt: '/v2.KeyManagementService/Decrypt',
} as const;

export type StatusRequest = Record<string, never>;
export interface StatusResponse {
  version: string;
  healthz: string;
  key_id: string;
}
export interface EncryptRequest {
  plaintext: Buffer;
  uid: string;
}
export interface EncryptResponse {
  ciphertext: Buffer;
  key_id: string;
  annotations: Record<string, Buffer>;
}
export interface DecryptRequest {
  ciphertext: Buffer;
  uid: string;
  key_id: string;
  annotations: Record<string, Buffer>;
}
export interface DecryptResponse {
  plaintext: Buffer;
}

/** The v2.KeyManagementService service definition (custom codecs, see ./codec.ts). */
export function kmsServiceDefinition(): ServiceDefinition {
  return KMS_SERVICE;
}
