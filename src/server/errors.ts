/**
 * The one place internal errors become gRPC status codes. Messages are the error's own (which by
 * policy never contain secrets); unknown errors become INTERNAL with a generic message.
 */
import { status, type ServiceError } from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import { asPluginError, type ErrorKind } from '../errors.js';

export const GRPC_CODE: Record<ErrorKind, status> = {
  invalid_input: status.INVALID_ARGUMENT,
  unauthenticated: status.INVALID_ARGUMENT,
  unknown_key: status.NOT_FOUND,
  permission_denied: status.PERMISSION_DENIED,
  throttled: status.RESOURCE_EXHAUSTED,
  unavailable: status.UNAVAILABLE,
  key_disabled: status.FAILED_PRECONDITION,
  deadline: status.DEADLINE_EXCEEDED,
  cancelled: status.CANCELLED,
  corrupt: status.INTERNAL,
  internal: status.INTERNAL,
};

export interface MappedError {
  code: status;
  kind: ErrorKind;
  details: string;
}

export function mapError(err: unknown): MappedError {
  const e = asPluginError(err);
  return { code: GRPC_CODE[e.kind], kind: e.kind, details: e.message };
}

export function toServiceError(mapped: MappedError): Partial<ServiceError> {
  return { code: mapped.code, details: mapped.details, message: mapped.details, metadata: new Metadata() };
}

/** Name of a gRPC code as kube-apiserver's metrics print it (e.g. "InvalidArgument"). */
export function codeName(code: status): string {
  const name = status[code] ?? 'UNKNOWN';
  if (name === 'OK') return 'OK';
  return name
    .toLowerCase()
    .split('_')
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join('');
}
