/**
 * The one owner of key state: the only writer of `kms_plugin_kek_state` and the only place that
 * logs key-state transitions. Providers only return a state (`KeyVersionInfo.state`/`detail`, or an
 * error marked with `withKeyState`); the rotation watcher hands what it acts on to a reporter.
 *
 * One log policy for every backend: a line on every change of state (error while the key stops
 * writes, warn for other bad states, info when it is enabled), and while it stays bad the same
 * line again at most every REPEAT_BAD_STATE_MS.
 */
import { describeRef } from '../envelope/envelope.js';
import { STOP_WRITES } from '../kek/key-state.js';
import { KEY_STATES, type KekRef, type KeyState } from '../kek/types.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

/** While the key stays unusable, its log line repeats at most this often. */
export const REPEAT_BAD_STATE_MS = 10 * 60_000;

export interface KeyStateReporterOptions {
  logger: Logger;
  metrics?: Pick<Metrics, 'setKekState'>;
  /** 'primary', or 'decrypt-only-<i>' (the `role` label). */
  role: string;
  now?: () => number;
}

export interface ReportedKeyState {
  ref: KekRef;
  state: KeyState;
  detail?: string;
}

export class KeyStateReporter {
  private readonly now: () => number;
  private last: KeyState | undefined;
  private lastBadLogAt = 0;

  constructor(private readonly options: KeyStateReporterOptions) {
    this.now = options.now ?? Date.now;
  }

  /** The state last reported, if any. */
  get state(): KeyState | undefined {
    return this.last;
  }

  report(info: ReportedKeyState): void {
    const { metrics, role } = this.options;
    metrics?.setKekState(info.ref.provider, role, info.state, KEY_STATES);
    const previous = this.last;
    this.last = info.state;
    const changed = previous !== info.state;
    const fields = { kek: describeRef(info.ref), role, state: info.state };
    if (info.state === 'enabled') {
      if (changed)
        this.options.logger.info(
          fields,
          previous === undefined ? 'KEK enabled' : `KEK enabled again (was ${previous})`,
        );
      return;
    }
    const at = this.now();
    if (!changed && at - this.lastBadLogAt < REPEAT_BAD_STATE_MS) return;
    this.lastBadLogAt = at;
    const log = STOP_WRITES.has(info.state)
      ? this.options.logger.error.bind(this.options.logger)
      : this.options.logger.warn.bind(this.options.logger);
    log(
      { ...fields, detail: info.detail },
      info.state === 'pending_deletion' || info.state === 'destroyed'
        ? 'KEK IS SCHEDULED FOR DELETION OR DESTROYED: every Secret under it becomes unreadable when it goes. Cancel the deletion now'
        : 'KEK is not usable for new data keys',
    );
  }
}
