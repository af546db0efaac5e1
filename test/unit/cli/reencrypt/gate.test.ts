import {
  formatDuration,
  MetricsReplica,
  parseKeyIdMetrics,
  waitForKeyId,
  waitWriteWindow,
  type Replica,
  type ReplicaReport,
} from '../../../../src/cli/reencrypt/gate.js';
import { PluginError } from '../../../../src/errors.js';
import { FakeClock } from './fake-clock.js';

describe('parseKeyIdMetrics', () => {
  test('reads the key_id whose info value is 1, in any label order, and the last-change time', () => {
    const text = [
      '# HELP kms_plugin_key_id_info The key_id Status reports.',
      '# TYPE kms_plugin_key_id_info gauge',
      'kms_plugin_key_id_info{provider="aws",key_id="abc=="} 1',
      'kms_plugin_key_id_info{key_id="old",provider="aws"} 0',
      'kms_plugin_key_id_infox{key_id="nope"} 1',
      'kms_plugin_key_id_last_change_timestamp_seconds 1700000000.5',
    ].join('\n');
    expect(parseKeyIdMetrics(text)).toEqual({ keyIds: ['abc=='], changedAt: 1_700_000_000_500 });
  });

  test('escaped quotes in a label value; nothing found gives no key_id', () => {
    expect(parseKeyIdMetrics('kms_plugin_key_id_info{key_id="a\\"b",provider="x"} 1\n').keyIds).toEqual([
      'a"b',
    ]);
    expect(parseKeyIdMetrics('process_cpu_seconds_total 1\n')).toEqual({ keyIds: [], changedAt: undefined });
  });

  test('a bad --plugin-metrics URL is refused', () => {
    expect(() => new MetricsReplica('not a url')).toThrow(PluginError);
    expect(() => new MetricsReplica('ftp://x/metrics')).toThrow(/http\(s\)/);
    expect(new MetricsReplica('http://10.0.0.1:8080').name).toBe('http://10.0.0.1:8080/metrics');
  });
});

class ScriptedReplica implements Replica {
  calls = 0;
  constructor(
    readonly name: string,
    private readonly script: (call: number) => Omit<ReplicaReport, 'replica'>,
  ) {}
  async report(): Promise<ReplicaReport> {
    return { replica: this.name, ...this.script(this.calls++) };
  }
}

describe('waitForKeyId', () => {
  test('waits until every replica reports the key_id; adoption time is the latest switch', async () => {
    const clock = new FakeClock();
    const lines: string[] = [];
    const a = new ScriptedReplica('a', (n) =>
      n < 2 ? { keyIds: ['old'] } : { keyIds: ['new'], changedAt: 5000 },
    );
    const b = new ScriptedReplica('b', (n) =>
      n < 4 ? { keyIds: [], error: 'ECONNREFUSED' } : { keyIds: ['new'], changedAt: 7000 },
    );
    const r = await waitForKeyId({
      keyId: 'new',
      replicas: [a, b],
      intervalMs: 1000,
      timeoutMs: 60_000,
      clock,
      log: (l) => lines.push(l),
      wallNow: () => 9000,
    });
    expect(r).toEqual({ ok: true, adoptedAt: 7000 });
    expect(b.calls).toBe(5);
    expect(lines.join('\n')).toMatch(/still waiting for 2\/2: a reports old; b \(ECONNREFUSED\)/);
    expect(lines.join('\n')).toMatch(/still waiting for 1\/2: b \(ECONNREFUSED\)/);
    expect(lines[lines.length - 1]).toBe('all 2 replicas report key_id new');
  });

  test('without a switch time from every replica, the window starts when all were seen on the key_id', async () => {
    const clock = new FakeClock();
    const a = new ScriptedReplica('a', () => ({ keyIds: ['new'], changedAt: 1000 }));
    const s = new ScriptedReplica('unix:///sock', () => ({ keyIds: ['new'] }));
    const r = await waitForKeyId({
      keyId: 'new',
      replicas: [a, s],
      intervalMs: 10,
      timeoutMs: 100,
      clock,
      log: () => undefined,
      wallNow: () => 4242,
    });
    expect(r).toEqual({ ok: true, adoptedAt: 4242 });
  });

  test('a replica reporting two key_ids, or another one, is not switched; the timeout says who', async () => {
    const clock = new FakeClock();
    const a = new ScriptedReplica('a', () => ({ keyIds: ['new', 'old'] }));
    const r = await waitForKeyId({
      keyId: 'new',
      replicas: [a],
      intervalMs: 1000,
      timeoutMs: 5000,
      clock,
      log: () => undefined,
    });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toMatch(/after 5s: a reports new, old/);
  });

  test('interrupted: stops polling', async () => {
    const clock = new FakeClock();
    const ac = new AbortController();
    const a = new ScriptedReplica('a', () => {
      ac.abort();
      return { keyIds: ['old'] };
    });
    const r = await waitForKeyId({
      keyId: 'new',
      replicas: [a],
      intervalMs: 1000,
      timeoutMs: 60_000,
      clock,
      signal: ac.signal,
      log: () => undefined,
    });
    expect(r).toEqual({ ok: false, reason: 'interrupted' });
    expect(a.calls).toBe(1);
  });
});

describe('waitWriteWindow', () => {
  test('waits until adoption + window, saying what for and how long', async () => {
    const clock = new FakeClock();
    const lines: string[] = [];
    const wall = (): number => 1_000_000 + clock.now();
    const ok = await waitWriteWindow({
      adoptedAt: 1_000_000 - 60_000,
      windowMs: 180_000,
      clock,
      log: (l) => lines.push(l),
      wallNow: wall,
    });
    expect(ok).toBe(true);
    expect(clock.now()).toBe(120_000);
    expect(lines[0]).toMatch(
      /waiting out the apiserver write window: 3m after the key switch at .*Z.*; 2m left \(until .*Z\)/,
    );
    expect(lines).toContain('write window: 1m30s left');
    expect(lines[lines.length - 1]).toBe('write window passed');
  });

  test('already passed: no wait', async () => {
    const clock = new FakeClock();
    const lines: string[] = [];
    expect(
      await waitWriteWindow({
        adoptedAt: 0,
        windowMs: 1000,
        clock,
        log: (l) => lines.push(l),
        wallNow: () => 5000,
      }),
    ).toBe(true);
    expect(clock.sleeps).toEqual([]);
    expect(lines[0]).toMatch(/has already passed/);
  });

  test('interrupted: false', async () => {
    const ac = new AbortController();
    ac.abort();
    expect(
      await waitWriteWindow({
        adoptedAt: 0,
        windowMs: 60_000,
        clock: new FakeClock(),
        signal: ac.signal,
        log: () => undefined,
        wallNow: () => 0,
      }),
    ).toBe(false);
  });

  test('formatDuration', () => {
    expect([0, 999, 59_000, 61_000, 3_600_000 + 5000].map(formatDuration)).toEqual([
      '0s',
      '1s',
      '59s',
      '1m01s',
      '1h00m05s',
    ]);
  });
});
