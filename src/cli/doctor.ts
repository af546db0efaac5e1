/**
 * `probe --config FILE` (doctor): checks a configuration end to end without a running plugin:
 * builds each configured KEK provider, resolves the current version and its state, wraps a
 * throwaway random DEK with it and unwraps it again, and reports the key_id the plugin would use.
 * Prints no secrets; the test DEK is zeroed.
 *
 * It also fills a PreflightReport (`probe --config --json`, the `render preflight-job` Job): is the
 * KEK reachable, its state, whether each call the plugin makes is permitted (describe/list =
 * resolving the current version, encrypt = wrap, decrypt = unwrap), and the key_id.
 */
import { randomBytes } from 'node:crypto';
import type { Config, KekSelection } from '../config/schema.js';
import { timeoutSignal } from '../deadline.js';
import { describeRef } from '../envelope/envelope.js';
import { deriveKeyId } from '../envelope/keyid.js';
import { asPluginError } from '../errors.js';
import { createKekProvider } from '../kek/registry.js';
import type { KekProvider } from '../kek/types.js';
import type { Logger } from '../observability/logger.js';
import { Metrics } from '../observability/metrics.js';
import type { ProbeStep } from './probe.js';

export type Permission = 'granted' | 'denied' | 'not-tried' | `error: ${string}`;

export interface PreflightReport {
  provider: string;
  keyId: string | null;
  kek: { reachable: boolean; state: string | null; key: string | null };
  permissions: { describe: Permission; encrypt: Permission; decrypt: Permission };
}

export function emptyPreflightReport(provider: string): PreflightReport {
  return {
    provider,
    keyId: null,
    kek: { reachable: false, state: null, key: null },
    permissions: { describe: 'not-tried', encrypt: 'not-tried', decrypt: 'not-tried' },
  };
}

function permissionOf(err: unknown): Permission {
  const e = asPluginError(err);
  return e.kind === 'permission_denied' || e.kind === 'unauthenticated' ? 'denied' : `error: ${e.kind}`;
}

/** A KEK answered (even "disabled" or "denied" is an answer); transport failures are not. */
function answered(err: unknown): boolean {
  return !['unavailable', 'deadline', 'cancelled', 'internal'].includes(asPluginError(err).kind);
}

export async function runDoctor(
  config: Config,
  logger: Logger,
  timeoutMs: number,
  report: PreflightReport = emptyPreflightReport(config.provider),
): Promise<ProbeStep[]> {
  const steps: ProbeStep[] = [];
  const metrics = new Metrics({ processMetrics: false });
  const selections: Array<{ role: string; sel: KekSelection }> = [
    { role: 'primary', sel: { ...config, provider: config.provider } as KekSelection },
    ...config.decryptOnly.map((sel, i) => ({ role: `decrypt-only-${i}`, sel })),
  ];
  for (const { role, sel } of selections) {
    const t = Date.now();
    const step = (name: string, ok: boolean, detail: string): void => {
      steps.push({ name: `${role}:${name}`, ok, detail, ms: Date.now() - t });
    };
    let provider: KekProvider;
    try {
      provider = await createKekProvider(sel, { logger, metrics, role });
    } catch (err) {
      step('config', false, asPluginError(err).message);
      continue;
    }
    try {
      step('config', true, provider.description);
      if (role !== 'primary') continue; // decrypt-only KEKs cannot be exercised without data
      const signal = timeoutSignal(timeoutMs);
      let version: Awaited<ReturnType<KekProvider['currentVersion']>>;
      try {
        version = await provider.currentVersion(signal);
      } catch (err) {
        report.permissions.describe = permissionOf(err);
        report.kek.reachable = answered(err);
        throw err;
      }
      report.permissions.describe = 'granted';
      report.kek.reachable = true;
      report.kek.state = version.state;
      report.kek.key = describeRef(version.ref);
      const keyId = deriveKeyId(version.ref, config.keyIdGeneration);
      report.keyId = keyId;
      if (version.state !== 'enabled') {
        step(
          'kek',
          false,
          `${describeRef(version.ref)} is ${version.state}${version.detail ? ` (${version.detail})` : ''}: the plugin would refuse writes`,
        );
        continue;
      }
      step('kek', true, `${describeRef(version.ref)} enabled; key_id would be ${keyId}`);
      const dek = randomBytes(32);
      try {
        let wrapped: Awaited<ReturnType<KekProvider['wrap']>>;
        try {
          wrapped = await provider.wrap(dek, version, timeoutSignal(timeoutMs));
        } catch (err) {
          report.permissions.encrypt = permissionOf(err);
          throw err;
        }
        report.permissions.encrypt = 'granted';
        let back: Buffer;
        try {
          back = await provider.unwrap(wrapped.wrapped, wrapped.ref, timeoutSignal(timeoutMs));
        } catch (err) {
          report.permissions.decrypt = permissionOf(err);
          throw err;
        }
        report.permissions.decrypt = 'granted';
        const same = Buffer.from(back).equals(dek);
        back.fill(0);
        step(
          'wrap-unwrap',
          same,
          same
            ? `round trip ok (${wrapped.wrapped.length}-byte wrapped key)`
            : 'unwrap returned different bytes',
        );
      } finally {
        dek.fill(0);
      }
    } catch (err) {
      const e = asPluginError(err);
      step('kek', false, `${e.kind}: ${e.message}`);
    } finally {
      await provider.close();
    }
  }
  return steps;
}
