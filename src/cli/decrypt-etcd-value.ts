/**
 * `decrypt-etcd-value`: break-glass decryption of one etcd value when no kube-apiserver can start
 * (disaster recovery). Unwraps our DEK through the configured KEK providers (primary and
 * decryptOnly), opens the apiserver's seed with the envelope's own code, derives the apiserver's
 * per-object key (HKDF-SHA256 expand-only for type 1; the seed itself for type 0) and decrypts the
 * object with the etcd key as AAD. Prints the object (plaintext Secret data!) to stdout or a file.
 *
 * Guarded: needs --i-understand-this-prints-secrets, warns on stderr, never part of `serve`.
 */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { KekSelection } from '../config/schema.js';
import { parseDuration } from '../config/fields.js';
import { loadConfig } from '../config/load.js';
import { timeoutSignal } from '../deadline.js';
import { Envelope } from '../envelope/envelope.js';
import { ConfigError, InvalidInputError } from '../errors.js';
import { createKekProvider } from '../kek/registry.js';
import type { KekProvider } from '../kek/types.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { Metrics } from '../observability/metrics.js';
import { addConfigFlags, flagValues } from './flags.js';
import { openObject } from './etcd/hkdf.js';
import { parseEtcdValue, readValue } from './etcd/value.js';

export const GUARD_FLAG = 'i-understand-this-prints-secrets';

export interface BreakGlassOptions {
  etcdKey: string;
  value: Buffer;
  /** Config file and flag values, as for `serve`. */
  configFile?: string;
  flags?: Record<string, unknown>;
  timeoutMs?: number;
  logger?: Logger;
}

/** Decrypts one etcd value; returns the stored object bytes (usually `k8s\0` + protobuf). */
export async function decryptEtcdValue(options: BreakGlassOptions): Promise<Buffer> {
  if (!options.etcdKey.startsWith('/')) {
    throw new InvalidInputError(
      '--etcd-key must be the full etcd key, e.g. /registry/secrets/default/db-password',
    );
  }
  const parsed = parseEtcdValue(options.value);
  if (parsed.kind !== 'kms-v2') {
    throw new InvalidInputError(
      parsed.kind === 'identity'
        ? 'this value is not encrypted (identity): read it directly'
        : `this value was written by ${parsed.transformer} (provider "${parsed.providerName}"), not KMS v2`,
    );
  }
  const config = loadConfig({ file: options.configFile, flags: options.flags ?? {} });
  const logger = options.logger ?? createLogger({ level: 'warn' });
  const providers: KekProvider[] = [];
  // Break-glass must never create or watch key files.
  const quiet = (sel: KekSelection): KekSelection =>
    sel.local ? { ...sel, local: { ...sel.local, createIfMissing: false, watch: false } } : sel;
  const metrics = new Metrics({ processMetrics: false });
  let envelope: Envelope | undefined;
  let seed: Buffer | undefined;
  try {
    providers.push(
      await createKekProvider(quiet({ ...config, provider: config.provider } as KekSelection), {
        logger: logger.child({ kek: config.provider }),
        metrics,
        role: 'primary',
      }),
    );
    for (const [i, sel] of config.decryptOnly.entries()) {
      providers.push(
        await createKekProvider(quiet(sel), {
          logger: logger.child({ kek: sel.provider, role: `decrypt-only-${i}` }),
          metrics,
          role: `decrypt-only-${i}`,
        }),
      );
    }
    const [primary, ...decryptOnly] = providers;
    envelope = new Envelope({
      primary,
      decryptOnly,
      keyIdGeneration: config.keyIdGeneration,
      dekMaxAgeMs: config.dek.maxAge,
      dekMaxUses: config.dek.maxUses,
      cacheSize: 1,
      cacheTtlMs: config.dek.cacheTtl,
      maxPlaintextBytes: config.maxPlaintextBytes,
      logger,
    });
    const o = parsed.object;
    seed = await envelope.decrypt(
      o.encryptedDEKSource,
      o.keyID,
      o.annotations,
      timeoutSignal(options.timeoutMs ?? 30_000),
    );
    return openObject(seed, o.encryptedDEKSourceType, o.encryptedData, options.etcdKey);
  } finally {
    seed?.fill(0);
    envelope?.close();
    await Promise.allSettled(providers.map((p) => p.close()));
  }
}

export function registerDecryptEtcdValue(program: Command): void {
  addConfigFlags(
    program
      .command('decrypt-etcd-value')
      .description(
        'DISASTER RECOVERY: decrypt one etcd value with the configured KEK(s) and print the object (SECRET DATA). ' +
          `Requires --${GUARD_FLAG}`,
      )
      .requiredOption(
        '--etcd-key <KEY>',
        'the etcd key the value was read from (it is authenticated), e.g. /registry/secrets/ns/name',
      )
      .option(
        '--value-file <FILE>',
        'file holding the raw value from `etcdctl get --print-value-only` ("-" or omitted: stdin)',
      )
      .option('--base64', 'the value is base64 (e.g. from `etcdctl get -w json`)')
      .option('--out <FILE>', 'write the object to FILE (mode 0600) instead of stdout')
      .option('--timeout <DURATION>', 'deadline for the KMS unwrap', '30s')
      .option(`--${GUARD_FLAG}`, 'confirm that decrypted Secret data will be printed'),
  ).action(async (opts: Record<string, unknown>) => {
    if (opts.iUnderstandThisPrintsSecrets !== true) {
      throw new ConfigError(
        `--${GUARD_FLAG}`,
        `decrypt-etcd-value prints decrypted Secret data; it is for disaster recovery only. Add --${GUARD_FLAG} to confirm`,
      );
    }
    const timeoutMs = parseDuration(String(opts.timeout));
    if (timeoutMs === undefined) throw new ConfigError('--timeout', 'expected a duration like 30s');
    process.stderr.write(
      'k8s-kms-plugin: WARNING: break-glass decryption. The output is the PLAINTEXT object (Secret data). ' +
        'Do not leave it in files, terminals, shell history or logs; the action is not audited by Kubernetes.\n',
    );
    const value = await readValue(opts.valueFile as string | undefined, opts.base64 === true);
    const object = await decryptEtcdValue({
      etcdKey: String(opts.etcdKey),
      value,
      configFile: opts.config as string | undefined,
      flags: flagValues(opts),
      timeoutMs,
    });
    if (typeof opts.out === 'string') {
      try {
        writeFileSync(opts.out, object, { mode: 0o600, flag: 'wx' });
      } catch (err) {
        throw outError(opts.out, err);
      } finally {
        object.fill(0);
      }
    } else {
      process.stdout.write(object, () => object.fill(0));
    }
  });
}

/** A one-line, actionable error for a failed --out write (never overwrites decrypted output). */
function outError(file: string, err: unknown): ConfigError {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  const why =
    code === 'EEXIST'
      ? 'already exists; it is never overwritten (it may hold decrypted secrets): remove it or choose another path'
      : code === 'ENOENT'
        ? 'cannot be created: its directory does not exist'
        : code === 'EACCES' || code === 'EPERM'
          ? 'cannot be created: permission denied'
          : code === 'EISDIR'
            ? 'is a directory'
            : `cannot be written (${code ?? 'error'})`;
  return new ConfigError('--out', `${file} ${why}`);
}
