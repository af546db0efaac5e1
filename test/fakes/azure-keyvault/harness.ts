/**
 * Test harness around the Key Vault fake: writes the test CA to a temp file, builds validated
 * `azure:` configs pointing at the fake, captures logs, and makes ProviderDeps.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AccessToken, TokenCredential } from '@azure/identity';
import { azureSchema, type AzureConfig, type AzureConfigInput } from '../../../src/config/providers/azure.js';
import type { ProviderDeps } from '../../../src/kek/types.js';
import { createLogger } from '../../../src/observability/logger.js';
import { Metrics } from '../../../src/observability/metrics.js';
import type { TestPki } from './certs.js';

export class TempDir {
  readonly path = mkdtempSync(join(tmpdir(), 'azure-kek-test-'));
  file(name: string, content: string, mode = 0o600): string {
    const p = join(this.path, name);
    writeFileSync(p, content, { mode });
    return p;
  }
  remove(): void {
    rmSync(this.path, { recursive: true, force: true });
  }
}

export interface Captured {
  deps: ProviderDeps;
  metrics: Metrics;
  lines: string[];
  logs(): Array<Record<string, unknown>>;
}

export function captureDeps(role = 'primary'): Captured {
  const lines: string[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: (s: string) => void lines.push(s) } });
  const metrics = new Metrics({ processMetrics: false });
  return {
    deps: { logger, metrics, role },
    metrics,
    lines,
    logs: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

export function fakeConfig(
  vaultUrl: string,
  caFile: string,
  over: Partial<AzureConfigInput> = {},
): AzureConfig {
  return azureSchema.parse({
    vaultUrl,
    keyName: 'kek',
    caFile,
    disableChallengeResourceVerification: true,
    ...over,
  });
}

export function writeCa(dir: TempDir, pki: TestPki): string {
  return dir.file('ca.crt', pki.ca, 0o644);
}

/** A static credential that counts calls (stands in for @azure/identity where identity is not under test). */
export class StaticCredential implements TokenCredential {
  calls = 0;
  constructor(readonly token = `static-${Math.random().toString(36).slice(2)}-token`) {}
  async getToken(): Promise<AccessToken> {
    this.calls += 1;
    return { token: this.token, expiresOnTimestamp: Date.now() + 3_600_000 };
  }
}

/** Current value of a labelled gauge/counter. */
export async function metricValue(
  metrics: Metrics,
  name: string,
  labels: Record<string, string>,
): Promise<number | undefined> {
  const m = metrics.registry.getSingleMetric(name);
  if (!m) return undefined;
  const data = await m.get();
  const hit = data.values.find((v) =>
    Object.entries(labels).every(([k, val]) => (v.labels as Record<string, unknown>)[k] === val),
  );
  return hit?.value;
}
