/**
 * Composition root: config → logger/metrics → KEK providers → envelope → watcher → gRPC server
 * (+ health HTTP). No globals: tests assemble the same pieces, or call startPlugin().
 *
 * Order matters: the socket is bound before any remote call (a missing socket costs the apiserver
 * its whole timeout plus a long reconnect back-off); priming the first DEK happens after.
 */
import type { Config, KekSelection } from '../config/schema.js';
import { AEAD, AEAD_FALLBACK_REASON } from '../envelope/aead.js';
import { Envelope } from '../envelope/envelope.js';
import { startHealthServer } from '../health/http.js';
import { KekWatcher } from '../health/watcher.js';
import { createHealthView } from '../health/view.js';
import { createKekProvider } from '../kek/registry.js';
import type { KekProvider } from '../kek/types.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { Metrics } from '../observability/metrics.js';
import { KmsServer } from '../server/server.js';

export interface StartOptions {
  logger?: Logger;
  metrics?: Metrics;
  /** Wait until the first DEK is ready (or fail after this many ms). Default: don't wait. */
  waitForPrimeMs?: number;
}

export interface PluginHandle {
  config: Config;
  server: KmsServer;
  envelope: Envelope;
  watcher: KekWatcher;
  metrics: Metrics;
  logger: Logger;
  providers: KekProvider[];
  /** host:port the health/metrics server listens on, if enabled. */
  healthAddress?: string;
  close(): Promise<void>;
}

export async function startPlugin(config: Config, options: StartOptions = {}): Promise<PluginHandle> {
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  const metrics = options.metrics ?? new Metrics();
  const providers: KekProvider[] = [];
  const closeProviders = async (): Promise<void> => {
    await Promise.allSettled(providers.map((p) => p.close()));
  };

  try {
    const primarySelection: KekSelection = { ...config, provider: config.provider } as KekSelection;
    providers.push(
      await createKekProvider(primarySelection, {
        logger: logger.child({ kek: config.provider }),
        metrics,
        role: 'primary',
      }),
    );
    for (const [i, sel] of config.decryptOnly.entries()) {
      providers.push(
        await createKekProvider(sel, {
          logger: logger.child({ kek: sel.provider, role: `decrypt-only-${i}` }),
          metrics,
          role: `decrypt-only-${i}`,
        }),
      );
    }
  } catch (err) {
    await closeProviders();
    throw err;
  }
  const [primary, ...decryptOnly] = providers;

  const envelope = new Envelope({
    primary,
    decryptOnly,
    keyIdGeneration: config.keyIdGeneration,
    dekMaxAgeMs: config.dek.maxAge,
    dekMaxUses: config.dek.maxUses,
    cacheSize: config.dek.cacheSize,
    cacheTtlMs: config.dek.cacheTtl,
    maxPlaintextBytes: config.maxPlaintextBytes,
    logger,
    metrics,
  });
  if (AEAD_FALLBACK_REASON !== undefined) {
    logger.warn(
      { aead: AEAD.name, reason: AEAD_FALLBACK_REASON },
      'native AES-GCM helper not loaded (run npm run build): Encrypt and Decrypt use node:crypto, same results at more CPU per call',
    );
  } else logger.debug({ aead: AEAD.name }, 'AES-GCM implementation');
  const watcher = new KekWatcher({
    envelope,
    provider: primary,
    probe: {
      intervalMs: config.probe.interval,
      jitter: config.probe.jitter,
      timeoutMs: config.probe.timeout,
      stableObservations: config.probe.stableObservations,
      healthGraceMs: config.probe.healthGrace,
    },
    statusVersion: config.statusVersion,
    logger,
    metrics,
  });
  metrics.setHealthSource(
    () => watcher.gaugeState(),
    () => watcher.snapshot().lastGoodProbeAt,
  );
  const server = new KmsServer({
    listen: config.listen,
    socketMode: config.socketMode,
    socketGroup: config.socketGroup,
    maxPlaintextBytes: config.maxPlaintextBytes,
    status: watcher,
    envelope,
    logger,
    metrics,
  });

  try {
    await server.start();
  } catch (err) {
    envelope.close();
    await closeProviders();
    throw err;
  }
  watcher.start();

  let health: { address: string; close(): Promise<void> } | undefined;
  if (config.healthAddr !== '') {
    try {
      health = await startHealthServer({
        addr: config.healthAddr,
        metrics,
        view: createHealthView({ watcher, loadedVersions: () => primary.loadedVersions?.() }),
        logger,
      });
    } catch (err) {
      watcher.stop();
      await server.stop(0);
      envelope.close();
      await closeProviders();
      throw err;
    }
  }

  let closing: Promise<void> | undefined;
  const handle: PluginHandle = {
    config,
    server,
    envelope,
    watcher,
    metrics,
    logger,
    providers,
    healthAddress: health?.address,
    close: () => {
      closing ??= (async () => {
        logger.info({ shutdownTimeoutMs: config.shutdownTimeout }, 'shutting down: draining in-flight calls');
        watcher.stop();
        await server.stop(config.shutdownTimeout);
        await health?.close();
        envelope.close(); // zeroes every DEK in memory
        await closeProviders();
        logger.info('stopped; keys zeroed');
      })();
      return closing;
    },
  };

  if (options.waitForPrimeMs !== undefined) {
    try {
      await watcher.waitUntilPrimed(options.waitForPrimeMs);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }
  return handle;
}
