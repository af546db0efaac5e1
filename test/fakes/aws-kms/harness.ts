/**
 * Test harness: builds the real aws provider (real SDK) pointed at a FakeAwsKms, with a private
 * metrics registry and a logger whose lines are captured for assertions.
 */
import { Writable } from 'node:stream';
import { awsSchema, type AwsConfigInput } from '../../../src/config/providers/aws.js';
import { createProvider } from '../../../src/kek/aws/index.js';
import type { KekProvider } from '../../../src/kek/types.js';
import { createLogger, type Logger } from '../../../src/observability/logger.js';
import { Metrics } from '../../../src/observability/metrics.js';
import type { FakeAwsKms } from './fake.js';

export interface CapturedLog {
  lines: string[];
  logger: Logger;
  /** Parsed JSON lines. */
  entries(): Array<Record<string, unknown>>;
}

export function captureLogger(level: 'debug' | 'info' = 'debug'): CapturedLog {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(l);
      cb();
    },
  });
  const logger = createLogger({ level, destination });
  return { lines, logger, entries: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

export interface Harness {
  provider: KekProvider;
  metrics: Metrics;
  log: CapturedLog;
}

/** Static credentials the harness uses unless `staticCredentials: false`. */
export const TEST_ACCESS_KEY_ID = 'AKIDFAKEHARNESS';
export const TEST_SECRET_ACCESS_KEY = 'harness-secret-key-do-not-log';

/**
 * Creates the provider for `fake`. Config defaults: endpoint = fake.url, region = fake.region, and
 * short timeouts suitable for tests. Static credentials come from env vars set by the caller
 * (see withStaticCredentials) or from whatever credential chain the test arranged.
 */
export async function makeAwsProvider(
  fake: FakeAwsKms,
  overrides: Partial<AwsConfigInput> = {},
  role = 'primary',
): Promise<Harness> {
  const config = awsSchema.parse({
    endpoint: fake.url,
    region: fake.region,
    attemptTimeout: '1s',
    connectTimeout: '500ms',
    ...overrides,
  } as AwsConfigInput);
  const metrics = new Metrics({ processMetrics: false });
  const log = captureLogger();
  const provider = await createProvider(config, { logger: log.logger, metrics, role });
  return { provider, metrics, log };
}

/** Sets env vars for the duration of a test file; returns a restore function. */
export function setEnv(vars: Record<string, string | undefined>): () => void {
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(vars)) {
    saved[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  return () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}

/** Env for tests: no IMDS, no shared config, no stray credentials. */
export const ISOLATED_AWS_ENV: Record<string, string | undefined> = {
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_CONFIG_FILE: '/nonexistent/aws-config',
  AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
  AWS_PROFILE: undefined,
  AWS_ACCESS_KEY_ID: undefined,
  AWS_SECRET_ACCESS_KEY: undefined,
  AWS_SESSION_TOKEN: undefined,
  AWS_CONTAINER_CREDENTIALS_FULL_URI: undefined,
  AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: undefined,
  AWS_CONTAINER_AUTHORIZATION_TOKEN: undefined,
  AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: undefined,
  AWS_WEB_IDENTITY_TOKEN_FILE: undefined,
  AWS_ROLE_ARN: undefined,
  AWS_ROLE_SESSION_NAME: undefined,
  AWS_ENDPOINT_URL: undefined,
  AWS_ENDPOINT_URL_KMS: undefined,
  AWS_ENDPOINT_URL_STS: undefined,
  AWS_REGION: undefined,
  AWS_DEFAULT_REGION: undefined,
};

/** ISOLATED_AWS_ENV plus the harness's static credentials. */
export const STATIC_AWS_ENV: Record<string, string | undefined> = {
  ...ISOLATED_AWS_ENV,
  AWS_ACCESS_KEY_ID: TEST_ACCESS_KEY_ID,
  AWS_SECRET_ACCESS_KEY: TEST_SECRET_ACCESS_KEY,
};
