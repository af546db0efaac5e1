/**
 * Loads the Cloud KMS service definition from the protos shipped inside @google-cloud/kms, so the
 * fake speaks exactly the wire format the SDK under test was generated from.
 */
import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const require = createRequire(import.meta.url);

let cached: grpc.ServiceDefinition | undefined;

export function kmsServiceDefinition(): grpc.ServiceDefinition {
  if (cached) return cached;
  const json = require('@google-cloud/kms/build/protos/protos.json') as Record<string, unknown>;
  const def = protoLoader.fromJSON(json, {
    keepCase: false,
    longs: Number,
    enums: String,
    defaults: false,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    google: { cloud: { kms: { v1: { KeyManagementService: { service: grpc.ServiceDefinition } } } } };
  };
  cached = pkg.google.cloud.kms.v1.KeyManagementService.service;
  return cached;
}
