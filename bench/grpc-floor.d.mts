/** Types for bench/grpc-floor.mjs (plain JavaScript, so that node runs it without tsx). */
import type { ServiceDefinition } from '@grpc/grpc-js';

export function serveFloor(definition: ServiceDefinition, socket: string): void;
export function protoLoaderDefinition(protoPath: string): Promise<ServiceDefinition>;
