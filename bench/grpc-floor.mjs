/**
 * The grpc-js floor server, in plain JavaScript so that node runs it with no loader: a KMS v2
 * server whose handlers do no work (Status returns a constant; Encrypt/Decrypt add/strip one byte
 * so kmsv2probe's checks still pass). Whatever our plugin costs above it is ours; whatever Go beats
 * it by is the gRPC stack.
 *
 * Run directly (this is how `bench:compare` starts it, with our plugin's NODE_OPTIONS and
 * MALLOC_ARENA_MAX, so its CPU and RSS are not inflated by tsx). It runs the stack as `serve`
 * runs it, with the HTTP/2 stream table `serve` swaps into each session (src/server/stream-table.ts):
 *
 *   npm run build     # the codecs and the stream table come from dist/
 *   node bench/grpc-floor.mjs /tmp/floor.sock [proto-loader] [node-streams] &
 *
 * Codecs: the plugin's own built ones (dist/server/proto.js kmsServiceDefinition, i.e.
 * src/server/codec.ts), or proto-loader's with the word `proto-loader` (what the plugin used
 * before issue 16). `node-streams` leaves Node's own stream Map in the sessions (the stack before
 * issue 16's fourth pass). `bench/grpc-floor.ts` is the same server under tsx with the code from
 * src/ (no build needed); both call serveFloor() below.
 */
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { pathToFileURL } from 'node:url';

const KEY_ID = 'local-0000000000000000000000000000000000000000';

/**
 * Serves the do-nothing KMS v2 service on unix://socket with the given grpc-js service
 * definition; prints one line once bound; exits 0 on SIGTERM/SIGINT.
 * @param {import('@grpc/grpc-js').ServiceDefinition} definition
 * @param {string} socket
 * @param {{ watch(server: object): void } | undefined} sessions what `serve` does to each HTTP/2
 *   session (a SessionWatcher), or undefined to leave the sessions as Node makes them
 */
export function serveFloor(definition, socket, sessions) {
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
    sessions?.watch(server);
    process.stdout.write(`grpc-js floor server on unix://${socket} (pid ${process.pid})\n`);
  });
  const stop = () => server.tryShutdown(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/**
 * A SessionWatcher (src/server/stream-table.ts) that prints the first outcome, so that a run
 * shows which stack it measured.
 * @param {new (report: (a: { adopted: boolean; reason?: string }) => void) => { watch(server: object): void }} SessionWatcher
 */
export function reportingWatcher(SessionWatcher) {
  let said = false;
  return new SessionWatcher((a) => {
    if (said) return;
    said = true;
    process.stdout.write(`HTTP/2 stream table: ${a.adopted ? 'adopted' : `not adopted (${a.reason})`}\n`);
  });
}

/**
 * Serves the floor as `grpc-floor.mjs SOCKET [proto-loader] [node-streams]` asks (see above), with
 * the codecs and stream table given (from dist/ here, from src/ in grpc-floor.ts).
 * @param {string[]} argv the arguments after the script
 * @param {{ PROTO_PATH: string; kmsServiceDefinition(): import('@grpc/grpc-js').ServiceDefinition }} proto
 * @param {Parameters<typeof reportingWatcher>[0]} SessionWatcher
 */
export async function serveFloorFromArgs(argv, proto, SessionWatcher) {
  const [socket = '/tmp/kkp-grpc-floor.sock', ...words] = argv;
  const definition = words.includes('proto-loader')
    ? await protoLoaderDefinition(proto.PROTO_PATH)
    : proto.kmsServiceDefinition();
  serveFloor(
    definition,
    socket,
    words.includes('node-streams') ? undefined : reportingWatcher(SessionWatcher),
  );
}

/** proto-loader's definition of v2.KeyManagementService (the codec before issue 16). */
export async function protoLoaderDefinition(protoPath) {
  const { loadSync } = await import('@grpc/proto-loader');
  const opts = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };
  return loadSync(protoPath, opts)['v2.KeyManagementService'];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const proto = await import('../dist/server/proto.js');
  const { SessionWatcher } = await import('../dist/server/stream-table.js');
  await serveFloorFromArgs(process.argv.slice(2), proto, SessionWatcher);
}
