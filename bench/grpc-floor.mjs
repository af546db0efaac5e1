/**
 * The grpc-js floor server, in plain JavaScript so that node runs it with no loader: a KMS v2
 * server whose handlers do no work (Status returns a constant; Encrypt/Decrypt add/strip one byte
 * so kmsv2probe's checks still pass). Whatever our plugin costs above it is ours; whatever Go beats
 * it by is the gRPC stack.
 *
 * Run directly (this is how `bench:compare` starts it, with our plugin's NODE_OPTIONS and
 * MALLOC_ARENA_MAX, so its CPU and RSS are not inflated by tsx); it sets on itself the V8 flags
 * `serve` sets (SERVE_V8_FLAGS in src/cli/render/node-options.ts):
 *
 *   npm run build     # the codecs come from dist/
 *   node bench/grpc-floor.mjs /tmp/floor.sock [proto-loader] &
 *
 * Codecs: the plugin's own built ones (dist/server/proto.js kmsServiceDefinition, i.e.
 * src/server/codec.ts), or proto-loader's with a second argument `proto-loader` (what the plugin
 * used before issue 16). `bench/grpc-floor.ts` is the same server under tsx with the codecs
 * from src/ (no build needed); both call serveFloor() below.
 */
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';

const KEY_ID = 'local-0000000000000000000000000000000000000000';

/**
 * Serves the do-nothing KMS v2 service on unix://socket with the given grpc-js service
 * definition; prints one line once bound; exits 0 on SIGTERM/SIGINT.
 * @param {import('@grpc/grpc-js').ServiceDefinition} definition
 * @param {string} socket
 */
export function serveFloor(definition, socket) {
  const server = new Server();
  server.addService(definition, {
    Status: (_call, cb) => cb(null, { version: 'v2', healthz: 'ok', key_id: KEY_ID }),
    Encrypt: (call, cb) =>
      cb(null, {
        ciphertext: Buffer.concat([Buffer.from([1]), call.request.plaintext]),
        key_id: KEY_ID,
        annotations: {},
      }),
    Decrypt: (call, cb) => cb(null, { plaintext: call.request.ciphertext.subarray(1) }),
  });
  server.bindAsync(`unix://${socket}`, ServerCredentials.createInsecure(), (err) => {
    if (err) throw err;
    process.stdout.write(`grpc-js floor server on unix://${socket} (pid ${process.pid})\n`);
  });
  const stop = () => server.tryShutdown(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/** proto-loader's definition of v2.KeyManagementService (the codec before issue 16). */
export async function protoLoaderDefinition(protoPath) {
  const { loadSync } = await import('@grpc/proto-loader');
  const opts = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };
  return loadSync(protoPath, opts)['v2.KeyManagementService'];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // The V8 flags `serve` sets on itself (SERVE_V8_FLAGS), so the floor runs as the plugin does.
  const { applyServeV8Flags } = await import('../dist/cli/render/node-options.js');
  applyServeV8Flags(process.execArgv, setFlagsFromString);
  const proto = await import('../dist/server/proto.js');
  const socket = process.argv[2] ?? '/tmp/kkp-grpc-floor.sock';
  const definition =
    process.argv[3] === 'proto-loader'
      ? await protoLoaderDefinition(proto.PROTO_PATH)
      : proto.kmsServiceDefinition();
  serveFloor(definition, socket);
}
