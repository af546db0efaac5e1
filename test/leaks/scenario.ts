/**
 * The no-secret-leak scenario, the same for every provider, at log level `trace`:
 *
 *   - the provider's wrap/unwrap are wrapped (on the class prototype) to capture every DEK the
 *     plugin wraps or unwraps, and every wrapped DEK;
 *   - another replica writes "cold" ciphertexts, one DEK each, so the plugin under test unwraps;
 *   - prime; encrypt and decrypt several seeds; rotate the KEK and do it again; decrypt cold ones;
 *   - inject one fault of each class the fake offers (throttled, unavailable, permission denied,
 *     key disabled, deadline, ...) while probes, a DEK rotation and a cold Decrypt run into it;
 *   - send malformed and tampered requests (invalid input, unauthenticated, unknown key; a
 *     tampered wrapped DEK goes to the KMS and comes back refused);
 *   - read /livez, /readyz, /healthz and /metrics over HTTP, and the metrics registry's text;
 *   - shut down (the drain and zeroing logs);
 *
 * and then scans every log line, the metrics text, the health pages and every gRPC error message
 * for the seeds, the DEKs, the wrapped DEKs and the fixture's credentials and tokens, in raw, hex,
 * base64 and base64url forms. Expected: zero hits.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { expect } from '@jest/globals';
import type { ServiceError } from '@grpc/grpc-js';
import { startPlugin, type PluginHandle } from '../../src/app/plugin.js';
import { validateConfig } from '../../src/config/load.js';
import { timeoutSignal } from '../../src/deadline.js';
import { ANNOTATION_DEK } from '../../src/envelope/annotations.js';
import type { KekProvider } from '../../src/kek/types.js';
import { createLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import { KmsClient } from '../../src/server/client.js';
import type { EncryptResponse } from '../../src/server/proto.js';
import { TempDir, until } from '../faults/support.js';
import { SecretScanner, type Hit } from './scanner.js';

export interface LeakFault {
  name: string;
  inject(): void | Promise<void>;
  clear(): void | Promise<void>;
}

export interface LeakFixture {
  /** `{ provider, <section> }` for validateConfig. */
  config(): Record<string, unknown>;
  /** The provider class's prototype: wrap and unwrap are spied on to capture DEKs. */
  proto: Pick<KekProvider, 'wrap' | 'unwrap'>;
  /** Makes the remote primary move to a new version. */
  rotateKek(): void | Promise<void>;
  faults: LeakFault[];
  /** Credentials, tokens and key material used (read at the end, so tokens issued meanwhile count). */
  secrets(): Array<[label: string, value: string | Buffer]>;
}

export interface LeakReport {
  hits: Hit[];
  logLines: number;
  levels: Set<string>;
  errorMessages: string[];
  deks: number;
  unwrapped: number;
  wrapped: number;
  seeds: number;
  secrets: number;
  metricsChars: number;
}

interface Sealed {
  seed: Buffer;
  enc: EncryptResponse;
}

const PROBE = { interval: '200ms', jitter: 0, timeout: '1s', stableObservations: 1, healthGrace: '400ms' };

export async function runLeakScenario(fixture: LeakFixture): Promise<LeakReport> {
  const dir = new TempDir();
  const lines: string[] = [];
  const logger = createLogger({ level: 'trace', destination: { write: (s: string) => void lines.push(s) } });
  const scanner = new SecretScanner();
  const errors: string[] = [];
  const health: Record<string, string> = {};
  const metricsTexts: string[] = [];
  let seeds = 0;
  let deks = 0;
  let unwrapped = 0;
  let wrappedCount = 0;

  // Capture DEKs and wrapped DEKs at the provider boundary.
  const { proto } = fixture;
  const origWrap = proto.wrap;
  const origUnwrap = proto.unwrap;
  proto.wrap = async function (this: KekProvider, dek, version, signal) {
    deks += 1;
    scanner.add(`dek#${deks} (wrapped)`, Buffer.from(dek));
    const result = await origWrap.call(this, dek, version, signal);
    wrappedCount += 1;
    scanner.add(`wrapped#${wrappedCount}`, Buffer.from(result.wrapped));
    return result;
  };
  proto.unwrap = async function (this: KekProvider, wrapped, ref, signal) {
    const dek = await origUnwrap.call(this, wrapped, ref, signal);
    unwrapped += 1;
    scanner.add(`dek#u${unwrapped} (unwrapped)`, Buffer.from(dek));
    return dek;
  };

  const start = async (healthAddr = ''): Promise<{ plugin: PluginHandle; client: KmsClient }> => {
    const listen = dir.socket();
    const config = validateConfig({
      listen,
      healthAddr,
      logLevel: 'trace',
      probe: PROBE,
      ...fixture.config(),
    });
    const plugin = await startPlugin(config, {
      logger,
      metrics: new Metrics({ processMetrics: false }),
      waitForPrimeMs: 15_000,
    });
    return { plugin, client: new KmsClient(listen) };
  };
  const seal = async (client: KmsClient): Promise<Sealed> => {
    const seed = randomBytes(32);
    seeds += 1;
    scanner.add(`seed#${seeds}`, seed);
    const enc = await client.encrypt({ plaintext: seed, uid: randomUUID() });
    scanner.add(`annotation wrapped DEK (seed#${seeds})`, Buffer.from(enc.annotations[ANNOTATION_DEK]));
    return { seed, enc };
  };
  const open = async (client: KmsClient, s: Sealed, timeoutMs = 5000): Promise<Buffer> => {
    const out = await client.decrypt(
      {
        ciphertext: s.enc.ciphertext,
        key_id: s.enc.key_id,
        annotations: s.enc.annotations,
        uid: randomUUID(),
      },
      timeoutMs,
    );
    return Buffer.from(out.plaintext);
  };
  const expectError = async (what: string, p: Promise<unknown>): Promise<ServiceError> => {
    try {
      await p;
    } catch (e) {
      const err = e as ServiceError;
      errors.push(`${what}: ${err.code} ${err.details} | ${err.message}`);
      return err;
    }
    throw new Error(`${what}: expected a gRPC error`);
  };
  const record = (what: string, e: unknown): void => {
    errors.push(
      `${what}: ${(e as Error).message} | ${String(((e as Error).cause as Error | undefined)?.message)}`,
    );
  };

  let main: { plugin: PluginHandle; client: KmsClient } | undefined;
  try {
    // Cold ciphertexts from another replica, one DEK each.
    const cold: Sealed[] = [];
    {
      const writer = await start();
      try {
        for (let i = 0; i < fixture.faults.length + 2; i += 1) {
          if (i > 0) await writer.plugin.envelope.rotateDek('manual', timeoutSignal(5000));
          cold.push(await seal(writer.client));
        }
      } finally {
        writer.client.close();
        await writer.plugin.close();
      }
    }

    main = await start('127.0.0.1:0');
    const { client, plugin } = main;
    const before = await client.status();
    expect(before.healthz).toBe('ok');
    const written: Sealed[] = [];
    for (let i = 0; i < 4; i += 1) written.push(await seal(client));
    for (const s of written) expect((await open(client, s)).equals(s.seed)).toBe(true);

    await fixture.rotateKek();
    await until(
      'a new key_id after the KEK rotation',
      async () => ((await client.status()).key_id !== before.key_id ? true : undefined),
      10_000,
    );
    for (let i = 0; i < 3; i += 1) written.push(await seal(client));
    for (const s of written) expect((await open(client, s)).equals(s.seed)).toBe(true);
    expect((await open(client, cold[0])).equals(cold[0].seed)).toBe(true);

    // One fault of each class: probes, a DEK rotation and a cold Decrypt run into it.
    for (const [i, fault] of fixture.faults.entries()) {
      await fault.inject();
      await Promise.all([
        plugin.envelope.rotateDek('manual', timeoutSignal(1000)).catch((e: unknown) => record(fault.name, e)),
        open(client, cold[i + 1], 1000).then(
          () => undefined,
          (e: unknown) =>
            errors.push(`${fault.name}: ${(e as ServiceError).code} ${(e as ServiceError).details}`),
        ),
        new Promise((r) => setTimeout(r, 450)), // two probes
      ]);
      await client.status(1000).then(
        (s) => errors.push(`${fault.name}: healthz ${s.healthz}`),
        (e: unknown) => errors.push(`${fault.name}: status ${(e as ServiceError).details}`),
      );
      await fault.clear();
      await until(
        'healthy again',
        async () => ((await client.status(1000)).healthz === 'ok' ? true : undefined),
        10_000,
      );
    }
    expect((await open(client, cold[cold.length - 1])).equals(cold[cold.length - 1].seed)).toBe(true);

    // Malformed and tampered requests.
    const s0 = written[0];
    const flip = (b: Uint8Array, i: number): Buffer => {
      const c = Buffer.from(b);
      c[i % c.length] ^= 0x40;
      return c;
    };
    const tamperedWrapped = flip(s0.enc.annotations[ANNOTATION_DEK], 7);
    scanner.add('tampered wrapped DEK', tamperedWrapped);
    const req = (over: Record<string, unknown>) =>
      client.decrypt({
        ciphertext: s0.enc.ciphertext,
        key_id: s0.enc.key_id,
        annotations: s0.enc.annotations,
        uid: randomUUID(),
        ...over,
      });
    await expectError('tampered ciphertext', req({ ciphertext: flip(s0.enc.ciphertext, 20) }));
    await expectError(
      'truncated ciphertext',
      req({ ciphertext: Buffer.from(s0.enc.ciphertext).subarray(0, 20) }),
    );
    await expectError('wrong key_id', req({ key_id: `${s0.enc.key_id}x` }));
    await expectError('no annotations', req({ annotations: {} }));
    await expectError(
      'tampered wrapped DEK',
      req({ annotations: { ...s0.enc.annotations, [ANNOTATION_DEK]: tamperedWrapped } }),
    );
    await expectError('empty plaintext', client.encrypt({ plaintext: Buffer.alloc(0), uid: randomUUID() }));
    const big = randomBytes(2000);
    scanner.add('oversized plaintext', big);
    await expectError('oversized plaintext', client.encrypt({ plaintext: big, uid: randomUUID() }));

    // Health pages and metrics.
    const base = `http://${plugin.healthAddress ?? ''}`;
    for (const path of ['/livez', '/readyz', '/healthz', '/healthz?verbose', '/metrics']) {
      const res = await fetch(`${base}${path}`);
      health[path] = `${res.status} ${await res.text()}`;
    }
    metricsTexts.push(await plugin.metrics.registry.metrics());
  } finally {
    if (main) {
      main.client.close();
      await main.plugin.close();
    }
    proto.wrap = origWrap;
    proto.unwrap = origUnwrap;
    dir.remove();
  }

  for (const [label, value] of fixture.secrets()) scanner.add(label, value);
  const texts: Record<string, string> = {
    logs: lines.join(''),
    metrics: metricsTexts.join('\n'),
    errors: errors.join('\n'),
    ...Object.fromEntries(Object.entries(health).map(([k, v]) => [`GET ${k}`, v])),
  };
  const levels = new Set(lines.map((l) => String((JSON.parse(l) as { level?: unknown }).level)));
  return {
    hits: scanner.scan(texts),
    logLines: lines.length,
    levels,
    errorMessages: errors,
    deks,
    unwrapped,
    wrapped: wrappedCount,
    seeds,
    secrets: scanner.size,
    metricsChars: texts.metrics.length,
  };
}

/** The checks every provider's leak test makes on the report. */
export function expectNoLeaks(report: LeakReport, minFaults: number): void {
  // The scenario really ran: verbose logs, several DEKs wrapped and unwrapped, errors of each kind.
  expect(report.levels.has('trace') || report.levels.has('debug')).toBe(true);
  expect(report.logLines).toBeGreaterThan(50);
  expect(report.deks).toBeGreaterThanOrEqual(4);
  expect(report.unwrapped).toBeGreaterThanOrEqual(2);
  expect(report.errorMessages.length).toBeGreaterThanOrEqual(7 + minFaults);
  expect(report.metricsChars).toBeGreaterThan(1000);
  expect(report.hits).toEqual([]);
}
