/** The progress reporter: a redrawn bar on a TTY, JSON lines otherwise. */
import { describe, expect, it } from '@jest/globals';
import { createProgress, formatDuration, type ProgressStream } from '../../../src/cli/progress.js';

function sink(isTTY: boolean): ProgressStream & { out: string } {
  const s = {
    out: '',
    isTTY,
    columns: 200,
    write(chunk: string) {
      s.out += chunk;
      return true;
    },
  };
  return s;
}

/** A clock the test moves by hand (ms). */
function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('progress on a TTY', () => {
  it('redraws one line in place with count/total, rate and ETA, and ends with a newline', () => {
    const s = sink(true);
    const c = clock();
    const p = createProgress({ label: 'secrets', total: 100, stream: s, now: c.now, redrawMs: 0 });
    expect(p.mode).toBe('bar');
    c.advance(2000);
    p.tick(50);
    const line = s.out.split('\r').pop() ?? '';
    expect(line).toContain('secrets');
    expect(line).toContain('50/100');
    expect(line).toContain('50.0%');
    expect(line).toContain('25.0/s'); // 50 in 2 s
    expect(line).toContain('ETA 2s'); // 50 left at 25/s
    expect(s.out).not.toContain('\n');
    c.advance(2000);
    p.tick(50);
    p.done();
    expect(s.out.endsWith('\n')).toBe(true);
    expect(s.out.split('\r').pop()).toContain('100/100');
    expect(s.out.split('\r').pop()).toContain('in 4s');
  });

  it('shows count and rate only while the total is unknown, then the bar once setTotal() is called', () => {
    const s = sink(true);
    const c = clock();
    const p = createProgress({ label: 'census', stream: s, now: c.now, redrawMs: 0 });
    c.advance(1000);
    p.tick(10, { resource: 'secrets' });
    let line = s.out.split('\r').pop() ?? '';
    expect(line).toContain('census 10 10.0/s');
    expect(line).toContain('resource=secrets');
    expect(line).not.toContain('ETA');
    p.setTotal(40);
    c.advance(1000);
    p.tick(10);
    line = s.out.split('\r').pop() ?? '';
    expect(line).toContain('20/40');
    expect(line).toContain('ETA 2s');
  });

  it('redraws at most every redrawMs', () => {
    const s = sink(true);
    const c = clock();
    const p = createProgress({ label: 'x', stream: s, now: c.now, redrawMs: 100 });
    for (let i = 0; i < 50; i++) p.tick();
    expect(s.out.split('\r').length - 1).toBe(1);
    c.advance(150);
    p.tick();
    expect(s.out.split('\r').length - 1).toBe(2);
  });

  it('json: true forces JSON lines on a TTY; mode none writes nothing', () => {
    const a = sink(true);
    const pa = createProgress({ label: 'x', stream: a, json: true, everyN: 1 });
    pa.tick();
    expect(pa.mode).toBe('json');
    expect(JSON.parse(a.out.trim())).toMatchObject({ progress: 'x', count: 1 });
    const b = sink(true);
    const pb = createProgress({ label: 'x', stream: b, mode: 'none' });
    pb.tick(5);
    pb.done({ ok: true });
    expect(b.out).toBe('');
    expect(pb.count).toBe(5);
  });
});

describe('progress off a TTY', () => {
  it('writes one JSON line every N items and one at the end, with the summary', () => {
    const s = sink(false);
    const c = clock();
    const p = createProgress({ label: 'secrets', total: 25, stream: s, everyN: 10, now: c.now });
    expect(p.mode).toBe('json');
    for (let i = 0; i < 25; i++) {
      c.advance(100);
      p.tick(1, { resource: 'secrets' });
    }
    p.done({ rewritten: 25 });
    p.done({ rewritten: 99 }); // idempotent
    const lines = s.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.count)).toEqual([10, 20, 25]);
    expect(lines[0]).toMatchObject({
      progress: 'secrets',
      total: 25,
      rate: 10,
      etaSeconds: 2,
      resource: 'secrets',
    });
    expect(lines[2]).toMatchObject({ done: true, rewritten: 25, count: 25 });
    expect(s.out).not.toContain('\r');
  });

  it('a tick of many items emits one line, not one per crossed multiple', () => {
    const s = sink(false);
    const p = createProgress({ label: 'x', stream: s, everyN: 10 });
    p.tick(35);
    p.tick(4);
    p.tick(1);
    expect(
      s.out
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { count: number }).count),
    ).toEqual([35, 40]);
  });
});

describe('formatDuration', () => {
  it('seconds, minutes, hours', () => {
    expect(formatDuration(4.4)).toBe('4s');
    expect(formatDuration(125)).toBe('2m05s');
    expect(formatDuration(3 * 3600 + 7 * 60)).toBe('3h07m');
  });
});
