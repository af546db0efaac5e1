/**
 * The floor of @grpc/grpc-js on this machine, under tsx: the do-nothing KMS v2 server of
 * bench/grpc-floor.mjs (serveFloor) with the codecs from src/ (no build needed).
 * Whatever our plugin costs above this is ours; whatever Go beats this by is the gRPC stack.
 * Codecs: the plugin's own (src/server/codec.ts), or proto-loader's with a second argument
 * `proto-loader` (what the plugin used before issue 16).
 * The tsx loader costs the process CPU and RSS: for figures, run `node bench/grpc-floor.mjs`
 * (the built codecs from dist/), as `bench:compare` does.
 *
 *   npx tsx bench/grpc-floor.ts /tmp/floor.sock [proto-loader] &
 *   /opt/kmsv2probe/bin/kmsv2probe load --socket /tmp/floor.sock --op decrypt --concurrency 16 --plugin-pid $!
 */
import { setFlagsFromString } from 'node:v8';
import { applyServeV8Flags } from '../src/cli/render/node-options.js';
import { PROTO_PATH, kmsServiceDefinition } from '../src/server/proto.js';
import { protoLoaderDefinition, serveFloor } from './grpc-floor.mjs';

applyServeV8Flags(process.execArgv, setFlagsFromString); // as serve does
const socket = process.argv[2] ?? '/tmp/kkp-grpc-floor.sock';
serveFloor(
  process.argv[3] === 'proto-loader' ? await protoLoaderDefinition(PROTO_PATH) : kmsServiceDefinition(),
  socket,
);
