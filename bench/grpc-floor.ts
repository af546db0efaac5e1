/**
 * The floor of @grpc/grpc-js on this machine: a KMS v2 server whose handlers do no work (Status
 * returns a constant; Encrypt/Decrypt add/strip one byte so kmsv2probe's checks still pass).
 * Whatever our plugin costs above this is ours; whatever Go beats this by is the gRPC stack.
 * Codecs: the plugin's own (src/server/codec.ts), or proto-loader's with a second argument
 * `proto-loader` (what the plugin used before issue 16).
 *
 *   npx tsx bench/grpc-floor.ts /tmp/floor.sock [proto-loader] &
 *   /opt/kmsv2probe/bin/kmsv2probe load --socket /tmp/floor.sock --op decrypt --concurrency 16 --plugin-pid $!
 */
import {
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServiceDefinition,
  type sendUnaryData,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import {
  PROTO_PATH,
  kmsServiceDefinition,
  type DecryptRequest,
  type EncryptRequest,
} from '../src/server/proto.js';

const socket = process.argv[2] ?? '/tmp/kkp-grpc-floor.sock';
const keyId = 'local-0000000000000000000000000000000000000000';
const definition =
  process.argv[3] === 'proto-loader'
    ? (loadSync(PROTO_PATH, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true })[
        'v2.KeyManagementService'
      ] as unknown as ServiceDefinition)
    : kmsServiceDefinition();
const server = new Server();
server.addService(definition, {
  Status: (_call: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>) =>
    cb(null, { version: 'v2', healthz: 'ok', key_id: keyId }),
  Encrypt: (call: ServerUnaryCall<EncryptRequest, unknown>, cb: sendUnaryData<unknown>) =>
    cb(null, {
      ciphertext: Buffer.concat([Buffer.from([1]), call.request.plaintext]),
      key_id: keyId,
      annotations: {},
    }),
  Decrypt: (call: ServerUnaryCall<DecryptRequest, unknown>, cb: sendUnaryData<unknown>) =>
    cb(null, { plaintext: call.request.ciphertext.subarray(1) }),
});
server.bindAsync(`unix://${socket}`, ServerCredentials.createInsecure(), (err) => {
  if (err) throw err;
  process.stdout.write(`grpc-js floor server on unix://${socket} (pid ${process.pid})\n`);
});
const stop = (): void => server.tryShutdown(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
