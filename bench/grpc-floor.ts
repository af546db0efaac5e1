/**
 * The floor of @grpc/grpc-js on this machine, under tsx: the do-nothing KMS v2 server of
 * bench/grpc-floor.mjs (serveFloorFromArgs) with the codecs and the stream table from src/ (no build
 * needed).
 * Whatever our plugin costs above this is ours; whatever Go beats this by is the gRPC stack.
 * Codecs: the plugin's own (src/server/codec.ts), or proto-loader's with the word `proto-loader`
 * (what the plugin used before issue 16); `node-streams` leaves Node's stream Map in the sessions.
 * The tsx loader costs the process CPU and RSS: for figures, run `node bench/grpc-floor.mjs`
 * (the built codecs from dist/), as `bench:compare` does.
 *
 *   npx tsx bench/grpc-floor.ts /tmp/floor.sock [proto-loader] [node-streams] &
 *   /opt/kmsv2probe/bin/kmsv2probe load --socket /tmp/floor.sock --op decrypt --concurrency 16 --plugin-pid $!
 */
import * as proto from '../src/server/proto.js';
import { SessionWatcher } from '../src/server/stream-table.js';
import { serveFloorFromArgs } from './grpc-floor.mjs';

await serveFloorFromArgs(process.argv.slice(2), proto, SessionWatcher);
