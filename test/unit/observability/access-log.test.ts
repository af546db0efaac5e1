/**
 * The access log writes the same JSON line pino would; on pino's file destination batched (nothing
 * per line, everything within FLUSH_MS, at once past FLUSH_BYTES or on flush()).
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type DestinationStream } from 'pino';
import {
  AccessLog,
  FLUSH_BYTES,
  FLUSH_MS,
  type AccessRecord,
} from '../../../src/observability/access-log.js';
import { createLogger, type Logger } from '../../../src/observability/logger.js';

class Capture implements DestinationStream {
  writes: string[] = [];
  write(s: string): void {
    this.writes.push(s);
  }
  lines(): Array<Record<string, unknown>> {
    return this.writes
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}

const logs: AccessLog[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const l of logs.splice(0)) l.flush();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(level: 'info' | 'debug' | 'warn' = 'info'): {
  out: Capture;
  logger: Logger;
  access: AccessLog;
} {
  const out = new Capture();
  const logger = createLogger({ level, destination: out });
  const access = new AccessLog(logger);
  logs.push(access);
  return { out, logger, access };
}

const RECORD: AccessRecord = {
  method: 'decrypt',
  uid: '3f1c3f4e-5d34-4b7b-9d2e-5b3a0c8d9e11',
  keyId: 'local-0123456789abcdef0123456789abcdef',
  outcome: 'ok',
  code: 'OK',
  durationMs: 0.173,
};

/** A logger on pino's own file destination (synchronous here, so the file shows each write at once). */
function fileSetup(): { access: AccessLog; writes: () => number; text: () => string } {
  const dir = mkdtempSync(join(tmpdir(), 'kkp-access-'));
  dirs.push(dir);
  const file = join(dir, 'log');
  const dest = pino.destination({ dest: file, sync: true });
  let count = 0;
  const write = dest.write.bind(dest);
  dest.write = (s: string): boolean => {
    count += 1;
    return write(s);
  };
  const access = new AccessLog(createLogger({ level: 'info', destination: dest }));
  logs.push(access);
  return { access, writes: () => count, text: () => readFileSync(file, 'utf8') };
}

function lines(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('AccessLog', () => {
  it('writes the line pino writes for the same fields, in the same order', () => {
    const { out, logger, access } = setup();
    logger.info({ ...RECORD }, 'rpc');
    access.write('info', RECORD);
    access.flush();
    const [viaPino, ours] = out.lines();
    expect(Object.keys(ours)).toEqual(Object.keys(viaPino));
    expect({ ...ours, time: 'T' }).toEqual({ ...viaPino, time: 'T' });
    expect(new Date(String(ours.time)).toISOString()).toBe(ours.time);
    expect(ours).toMatchObject({ level: 'info', component: 'k8s-kms-plugin', msg: 'rpc', method: 'decrypt' });
  });

  it('omits undefined fields and includes the error, escaped, as pino does', () => {
    const { out, logger, access } = setup();
    const r: AccessRecord = {
      method: 'encrypt',
      uid: 'a"b\\c',
      keyId: undefined,
      outcome: 'invalid_input',
      code: 'InvalidArgument',
      durationMs: 12,
      error: 'plaintext is "weird"\n\u2028 ☃',
    };
    logger.warn({ ...r }, 'rpc');
    access.write('warn', r);
    access.flush();
    const [viaPino, ours] = out.lines();
    expect({ ...ours, time: 'T' }).toEqual({ ...viaPino, time: 'T' });
    expect(ours).not.toHaveProperty('keyId');
    expect(ours.error).toBe(r.error);
  });

  it("writes one line per write on a destination that is not pino's file stream", () => {
    const { out, access } = setup();
    expect(access.batching).toBe(false);
    access.write('info', RECORD);
    access.write('info', RECORD);
    expect(out.writes).toHaveLength(2);
    expect(out.writes.every((w) => w.endsWith('}\n') && w.split('\n').length === 2)).toBe(true);
  });

  it('batches on pino.destination: nothing per line; all lines in one write within FLUSH_MS', async () => {
    const { access, writes, text } = fileSetup();
    expect(access.batching).toBe(true);
    for (let i = 0; i < 50; i++) access.write('info', { ...RECORD, uid: `u${i}` });
    expect(writes()).toBe(0);
    await until(() => writes() > 0, 5000 + FLUSH_MS);
    expect(writes()).toBe(1);
    expect(lines(text()).map((l) => l.uid)).toEqual(Array.from({ length: 50 }, (_, i) => `u${i}`));
  });

  it('writes at once when FLUSH_BYTES are pending, and on flush()', () => {
    const { access, writes, text } = fileSetup();
    let n = 0;
    while (writes() === 0) {
      access.write('info', RECORD);
      n += 1;
      expect(n).toBeLessThan(FLUSH_BYTES); // each line is far longer than one byte
    }
    expect(text().length).toBeGreaterThanOrEqual(FLUSH_BYTES);
    access.write('info', RECORD);
    access.flush();
    expect(lines(text())).toHaveLength(n + 1);
    access.flush();
    expect(writes()).toBe(2);
  });

  it('batched lines keep every character (UTF-8 of any width) and their order, even past the buffer', () => {
    const { access, writes, text } = fileSetup();
    const odd = 'é ☃ 𝄞 "q" \\ \u2028';
    access.write('warn', { ...RECORD, uid: 'first', error: odd });
    // Longer than the whole gathering buffer (3 bytes per unit counted): written on its own,
    // after what was pending.
    const huge = '☃'.repeat(FLUSH_BYTES);
    access.write('warn', { ...RECORD, uid: 'huge', error: huge });
    access.write('warn', { ...RECORD, uid: 'last', error: odd });
    access.flush();
    expect(writes()).toBe(3);
    const got = lines(text());
    expect(got.map((l) => l.uid)).toEqual(['first', 'huge', 'last']);
    expect(got[0].error).toBe(odd);
    expect(got[1].error).toBe(huge);
    expect(got[2].error).toBe(odd);
  });

  it('enabled() follows the logger level', () => {
    const { access, logger } = setup('info');
    expect(access.enabled('info')).toBe(true);
    expect(access.enabled('debug')).toBe(false);
    logger.level = 'warn';
    expect(access.enabled('info')).toBe(false);
    expect(access.enabled('warn')).toBe(true);
  });
});
