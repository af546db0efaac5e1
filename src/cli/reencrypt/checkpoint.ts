/**
 * The reencrypt checkpoint file: per resource, the continue token of the page being worked on
 * and the last object (in list order) up to which every object is finished, or the
 * StorageVersionMigration being followed; finished resources; counts so far; when the write
 * window ended. A rerun with the same file resumes from it. Written atomically (temp file in the
 * same directory, fsync, rename), mode 0600. It holds no object data: names and opaque tokens.
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ConfigError } from '../../errors.js';

export interface Counts {
  rewritten: number;
  conflicts: number;
  gone: number;
  failed: number;
}

export interface FailureGroup {
  count: number;
  /** The first error message seen for this reason (never object data). */
  message: string;
  /** Up to five object names (namespace/name). */
  examples: string[];
}

export interface ResourceCheckpoint {
  /** Continue token of the page being processed (absent: the first page). */
  continue?: string;
  /** Every object of that page up to this key (namespace/name, list order) is finished. */
  after?: string;
  done?: boolean;
  /** The StorageVersionMigration followed for this resource (svm method). */
  svm?: { name: string; version: string };
  counts: Counts;
  /** Failure reason → count and examples. */
  failures: Record<string, FailureGroup>;
}

export interface CheckpointData {
  version: 1;
  server: string;
  method: 'svm' | 'update';
  resources: Record<string, ResourceCheckpoint>;
  /** The key-id gate passed and the write window ended (epoch ms) for this key_id. */
  gate?: { keyId: string; windowEndedAt: number };
  updatedAt?: string;
}

export function emptyCounts(): Counts {
  return { rewritten: 0, conflicts: 0, gone: 0, failed: 0 };
}

export function emptyResource(): ResourceCheckpoint {
  return { counts: emptyCounts(), failures: {} };
}

export class Checkpoint {
  private constructor(
    readonly file: string | undefined,
    readonly data: CheckpointData,
    /** True if the data came from an existing file. */
    readonly resumed: boolean,
  ) {}

  /** Loads `file` if it exists (checking it belongs to this server and method), else starts fresh. */
  static open(file: string | undefined, server: string, method: 'svm' | 'update'): Checkpoint {
    const fresh: CheckpointData = { version: 1, server, method, resources: {} };
    if (!file) return new Checkpoint(undefined, fresh, false);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Checkpoint(file, fresh, false);
      throw new ConfigError('--checkpoint', `cannot read ${file} (${(err as NodeJS.ErrnoException).code})`);
    }
    let data: CheckpointData;
    try {
      data = JSON.parse(text) as CheckpointData;
    } catch {
      throw new ConfigError(
        '--checkpoint',
        `${file} is not a reencrypt checkpoint (not JSON); move it away to start over`,
      );
    }
    if (data?.version !== 1 || typeof data.resources !== 'object' || data.resources === null) {
      throw new ConfigError(
        '--checkpoint',
        `${file} is not a reencrypt checkpoint (version 1); move it away to start over`,
      );
    }
    if (data.server !== server) {
      throw new ConfigError(
        '--checkpoint',
        `${file} was written for API server ${data.server}, not ${server}; use another file for this cluster`,
      );
    }
    if (data.method !== method) {
      throw new ConfigError(
        '--checkpoint',
        `${file} was written by --method ${data.method}; rerun with --method ${data.method} or use another file`,
      );
    }
    for (const r of Object.values(data.resources)) {
      r.counts = { ...emptyCounts(), ...r.counts };
      r.failures ??= {};
    }
    return new Checkpoint(file, data, true);
  }

  resource(id: string): ResourceCheckpoint {
    let r = this.data.resources[id];
    if (!r) {
      r = emptyResource();
      this.data.resources[id] = r;
    }
    return r;
  }

  /** Writes the file atomically (no-op without a file). */
  save(): void {
    if (!this.file) return;
    this.data.updatedAt = new Date().toISOString();
    writeAtomic(this.file, `${JSON.stringify(this.data, null, 1)}\n`);
  }
}

/** Temp file in the same directory (0600, flushed to disk), then rename over `file`. */
export function writeAtomic(file: string, text: string): void {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, text, { mode: 0o600, flush: true });
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
