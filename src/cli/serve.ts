/** `serve`: load config, start the plugin, stop cleanly on SIGTERM/SIGINT. */
import { resolve } from 'node:path';
import { startPlugin } from '../app/plugin.js';
import { configDeprecations, loadConfig } from '../config/load.js';
import { createLogger } from '../observability/logger.js';

/** The embedded development default: local KEK created on first start, a socket under /tmp. */
export function devDefaults(cwd = process.cwd()): Record<string, unknown> {
  return {
    listen: 'unix:///tmp/k8s-kms-plugin/kms.sock',
    provider: 'local',
    local: { keyFile: resolve(cwd, '.dev/local-kek.json'), createIfMissing: true },
  };
}

export async function serve(options: {
  config?: string;
  dev?: boolean;
  flags: Record<string, unknown>;
}): Promise<void> {
  const config = loadConfig({
    file: options.config,
    flags: options.flags,
    defaults: options.dev ? devDefaults() : undefined,
  });
  const logger = createLogger({ level: config.logLevel });
  for (const warning of configDeprecations(config)) logger.warn(warning);
  if (options.dev) {
    logger.warn(
      { listen: config.listen, keyFile: config.local?.keyFile },
      'DEVELOPMENT MODE (--dev): local KEK in a file next to the code. Never use this for a real cluster',
    );
  }
  const plugin = await startPlugin(config, { logger });
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) {
      logger.warn({ signal: sig }, 'second signal: exiting now');
      process.exit(1);
    }
    logger.info({ signal: sig }, 'signal received');
    plugin.close().then(
      () => {
        logger.flush();
        process.exitCode = 0;
        setTimeout(() => process.exit(0), 50).unref();
      },
      (err: unknown) => {
        logger.error({ err }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
