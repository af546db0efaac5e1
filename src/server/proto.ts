/** Loads proto/v2/api.proto (keepCase: field names stay snake_case, e.g. key_id). */
import { loadPackageDefinition, type GrpcObject, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';

export const PROTO_PATH = fileURLToPath(new URL('../../proto/v2/api.proto', import.meta.url));

export const METHODS = {
  status: '/v2.KeyManagementService/Status',
  encrypt: '/v2.KeyManagementService/Encrypt',
  decrypt: '/v2.KeyManagementService/Decrypt',
} as const;

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

let cached: GrpcObject | undefined;

export function loadKmsPackage(): GrpcObject {
  cached ??= loadPackageDefinition(
    loadSync(PROTO_PATH, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true }),
  );
  return cached;
}

/** The v2.KeyManagementService service definition. */
export function kmsServiceDefinition(): ServiceDefinition {
  const v2 = loadKmsPackage().v2 as GrpcObject;
  const ctor = v2.KeyManagementService as unknown as { service: ServiceDefinition };
  return ctor.service;
}
