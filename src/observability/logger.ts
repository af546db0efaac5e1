/**
 * pino JSON logger. Created once in the composition root and passed down; never a global.
 *
 * Redaction is a safety net, not the policy: code must not log secrets in the first place. The
 * paths below censor the field names under which a secret could plausibly end up.
 */
import { pino, type Logger as PinoLogger, type DestinationStream, type LevelWithSilent } from 'pino';

export type Logger = PinoLogger;
export type LogLevel = LevelWithSilent;
export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

const SECRET_FIELDS = [
  'plaintext',
  'ciphertext',
  'dek',
  'seed',
  'wrapped',
  'wrappedDek',
  'key',
  'keyMaterial',
  'token',
  'accessToken',
  'secret',
  'secretId',
  'clientSecret',
  'password',
  'credentials',
  'authorization',
  'annotations',
];

export const REDACT_PATHS: string[] = [
  ...SECRET_FIELDS,
  ...SECRET_FIELDS.map((f) => `*.${f}`),
  'headers.authorization',
  'headers["x-vault-token"]',
  '*.headers.authorization',
  '*.headers["x-vault-token"]',
];

export interface LoggerOptions {
  level: LogLevel;
  /** Where lines go; defaults to stderr (stdout stays free for CLI output). */
  destination?: DestinationStream;
  base?: Record<string, unknown>;
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { component: 'k8s-kms-plugin', ...options.base },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: serializeError },
    },
    options.destination ?? pino.destination({ fd: 2, sync: false }),
  );
}

/** Errors are logged by class, kind and message only: SDK error objects can carry request bodies. */
export function serializeError(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { message: String(err) };
  const out: Record<string, unknown> = { type: err.name, message: err.message };
  const kind = (err as { kind?: unknown }).kind;
  if (typeof kind === 'string') out.kind = kind;
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof Error) out.cause = { type: cause.name, message: cause.message };
  return out;
}

/** A logger that drops everything (tests, CLI commands that print their own output). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
