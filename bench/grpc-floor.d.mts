/** Types for bench/grpc-floor.mjs (plain JavaScript, so that node runs it without tsx). */
import type { ServiceDefinition } from '@grpc/grpc-js';
import type { Adoption, SessionWatcher } from '../src/server/stream-table.js';

/** What `serve` does to each HTTP/2 session of a grpc-js server (a SessionWatcher). */
export interface FloorSessions {
  watch(server: object): void;
}

export function serveFloor(
  definition: ServiceDefinition,
  socket: string,
  sessions: FloorSessions | undefined,
): void;
export function serveFloorFromArgs(
  argv: string[],
  proto: { PROTO_PATH: string; kmsServiceDefinition(): ServiceDefinition },
  watcher: new (report: (adoption: Adoption) => void) => SessionWatcher,
): Promise<void>;
export function protoLoaderDefinition(protoPath: string): Promise<ServiceDefinition>;
