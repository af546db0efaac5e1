/**
 * Test harness for the Vault provider: a FakeVault, a temp dir with credential files, a
 * capturing logger at trace level (with the production redaction), fresh metrics, and a provider
 * built through the real config schema and factory.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vaultSchema, type VaultConfigInput } from '../../../src/config/providers/vault.js';
import { KeyStateReporter } from '../../../src/health/kek-state.js';
import type { KekProvider, KeyVersionInfo } from '../../../src/kek/types.js';
import { createProvider } from '../../../src/kek/vault/index.js';
import type { VaultProvider, VaultProviderOptions } from '../../../src/kek/vault/provider.js';
import { createLogger, type Logger } from '../../../src/observability/logger.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { FakeVault, type FakeVaultOptions } from './server.js';

export interface CapturedLogs {
  logger: Logger;
  lines: string[];
  /** Parsed log records. */
  records(): Array<Record<string, unknown>>;
}

export function captureLogger(): CapturedLogs {
  const lines: string[] = [];
  const logger = createLogger({ level: 'trace', destination: { write: (s: string) => void lines.push(s) } });
  return { logger, lines, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

/**
 * The usual set-up of a Vault test suite: before each test (or, with `scope` 'all', once before
 * the suite) a started harness with the Transit key `kek`, handed to `use`; closed after it.
 */
export function useVaultHarness(use: (h: VaultHarness) => void, scope: 'each' | 'all' = 'each'): void {
  let h: VaultHarness | undefined;
  const [before, after] = scope === 'each' ? [beforeEach, afterEach] : [beforeAll, afterAll];
  before(async () => {
    h = await new VaultHarness().start();
    h.fake.createKey('kek');
    use(h);
  });
  after(async () => {
    await h?.close();
    h = undefined;
  });
}

export class VaultHarness {
  readonly dir = mkdtempSync(join(tmpdir(), 'vault-test-'));
  readonly logs = captureLogger();
  readonly metrics = new Metrics({ processMetrics: false });
  /** The one key-state owner (metric and log line), as the rotation watcher holds it. */
  readonly keyState = new KeyStateReporter({
    logger: this.logs.logger,
    metrics: this.metrics,
    role: 'primary',
  });
  readonly fake: FakeVault;
  url = '';
  private readonly providers: VaultProvider[] = [];

  constructor(fakeOptions: FakeVaultOptions = {}) {
    this.fake = new FakeVault(fakeOptions);
  }

  async start(): Promise<this> {
    this.url = await this.fake.listen();
    return this;
  }

  /** Writes `content` to a file in the temp dir (mode 0600) and returns its path. */
  file(name: string, content: string | Buffer): string {
    const path = join(this.dir, name);
    writeFileSync(path, content, { mode: 0o600 });
    return path;
  }

  /** A provider for `config` (address defaults to the fake, auth to a token file with the root token). */
  async provider(
    config: Partial<VaultConfigInput> = {},
    options: VaultProviderOptions = {},
    role = 'primary',
  ): Promise<VaultProvider> {
    const input: VaultConfigInput = {
      address: this.url,
      keyName: 'kek',
      auth: config.auth ?? { method: 'token', tokenFile: this.file('token', `${this.fake.rootToken}\n`) },
      ...config,
    };
    const parsed = vaultSchema.parse(input);
    const provider = (await createProvider(
      parsed,
      { logger: this.logs.logger, metrics: this.metrics, role },
      options,
    )) as VaultProvider;
    this.providers.push(provider);
    return provider;
  }

  /** Value of a metric series, or undefined. */
  /** A probe as the rotation watcher runs it: the provider returns the state, the owner reports it. */
  async probe(p: KekProvider, signal: AbortSignal): Promise<KeyVersionInfo> {
    const info = await p.currentVersion(signal);
    this.keyState.report(info);
    return info;
  }

  async metric(name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
    const m = (await this.metrics.registry.getMetricsAsJSON()).find((x) => x.name === name);
    const v = m?.values.find((val) =>
      Object.entries(labels).every(([k, want]) => String(val.labels[k]) === want),
    );
    return v?.value;
  }

  async close(): Promise<void> {
    for (const p of this.providers) await p.close();
    await this.fake.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A signal that aborts after `ms`, carrying its deadline like the envelope's signals do. */
export { timeoutSignal as deadlineIn } from '../../../src/deadline.js';
