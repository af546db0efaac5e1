/**
 * The one-line-per-RPC access log (the audit trail of Encrypt and Decrypt), written without pino's
 * per-line machinery.
 *
 * Each line is the same JSON pino would write for `logger[level]({ method, uid, keyId, outcome,
 * code, durationMs, error }, 'rpc')` (same level label, ISO time, bindings, field order), built
 * as one string. Lines are gathered for up to FLUSH_MS (or FLUSH_BYTES) and handed to the
 * logger's stream in one write, instead of one write per RPC. They are gathered as bytes in one
 * Buffer allocated once (outside the JavaScript heap), not as a growing string: a string held for
 * 50 ms outlives two young-generation collections and is copied into the old generation, which
 * then needs full collections more often (docs/benchmarks.md). Under load, an asynchronous file
 * write per line cost more CPU than the rest of a Decrypt, and even one write every 10 ms showed
 * up as 6% of the CPU under load (the profiles in docs/benchmarks.md).
 * No line waits longer than FLUSH_MS, and flush() writes what is pending at once (the server calls
 * it when it stops).
 *
 * Only fixed, non-secret fields go here (method, uid, key_id, outcome, gRPC code, duration, and
 * the message of our own error classes, which by policy carry no secrets), so the redaction pass
 * is not needed.
 */
import { pino, type DestinationStream, type Level } from 'pino';
import type { Logger } from './logger.js';

/** Longest a line waits before it is written. */
export const FLUSH_MS = 50;
/**
 * Pending text that is written at once, without waiting for the timer. Small enough that the
 * string handed to the stream is an ordinary young-generation object: at 128 KiB it went to V8's
 * large-object space, fresh pages every time, and that allocation alone cost ~0.8 µs per Decrypt
 * under load (a write every ~3 ms at saturation costs less).
 */
export const FLUSH_BYTES = 32 * 1024;
/** The gathering buffer: FLUSH_BYTES plus room for the longest line we expect after it. */
const BUFFER_BYTES = FLUSH_BYTES + 16 * 1024;

export interface AccessRecord {
  method: string;
  uid: string | undefined;
  keyId: string | undefined;
  outcome: string | undefined;
  code: string;
  durationMs: number;
  error?: string;
}

/** JSON string literal; plain printable ASCII skips JSON.stringify. */
function quote(s: string): string {
  return /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/.test(s) ? `"${s}"` : JSON.stringify(s);
}

export class AccessLog {
  private readonly stream: DestinationStream;
  private readonly bindings: string;
  /** Lines gathered but not written yet: buffer[0, used). */
  private buffer: Buffer | undefined;
  private used = 0;
  private timer: NodeJS.Timeout | undefined;
  private lastMs = -1;
  private lastTime = '';
  private readonly flushNow = (): void => this.flush();

  /**
   * Batching only on pino's own file destination (SonicBoom, what createLogger uses by default).
   * Any other destination gets one write per line, as pino itself does (some consumers, such as
   * tests' capture streams, treat each write as one line).
   */
  readonly batching: boolean;

  constructor(private readonly logger: Logger) {
    this.stream = (logger as unknown as Record<symbol, DestinationStream>)[pino.symbols.streamSym];
    this.batching = typeof (this.stream as { flushSync?: unknown }).flushSync === 'function';
    const b = JSON.stringify(logger.bindings());
    this.bindings = b === '{}' ? '' : `,${b.slice(1, -1)}`;
  }

  enabled(level: Level): boolean {
    return this.logger.isLevelEnabled(level);
  }

  /** Queues one line (call enabled() first). */
  write(level: Level, r: AccessRecord): void {
    const now = Date.now();
    if (now !== this.lastMs) {
      this.lastMs = now;
      this.lastTime = new Date(now).toISOString();
    }
    let line = `{"level":"${level}","time":"${this.lastTime}"${this.bindings},"method":"${r.method}"`;
    if (r.uid !== undefined) line += `,"uid":${quote(r.uid)}`;
    if (r.keyId !== undefined) line += `,"keyId":${quote(r.keyId)}`;
    if (r.outcome !== undefined) line += `,"outcome":${quote(r.outcome)}`;
    line += `,"code":"${r.code}","durationMs":${r.durationMs}`;
    if (r.error !== undefined) line += `,"error":${quote(r.error)}`;
    line += ',"msg":"rpc"}\n';
    if (!this.batching) {
      this.stream.write(line);
      return;
    }
    // Room for the line in the worst case (3 UTF-8 bytes per UTF-16 unit), else write what is pending.
    const buffer = (this.buffer ??= Buffer.allocUnsafe(BUFFER_BYTES));
    const worst = line.length * 3;
    if (this.used + worst > buffer.length) {
      this.flush();
      if (worst > buffer.length) {
        this.stream.write(line); // a line longer than the whole buffer: on its own
        return;
      }
    }
    this.used += buffer.write(line, this.used, 'utf8');
    if (this.used >= FLUSH_BYTES) this.flush();
    else this.timer ??= setTimeout(this.flushNow, FLUSH_MS);
  }

  /** Writes the queued lines now. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.used === 0 || !this.buffer) return;
    const text = this.buffer.toString('utf8', 0, this.used);
    this.used = 0;
    this.stream.write(text);
  }
}
