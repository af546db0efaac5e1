/**
 * The one owner of key state (src/health/kek-state.ts): the only writer of kms_plugin_kek_state
 * and the only place that logs key-state transitions, with one policy for every backend.
 */
import { describe, expect, it } from '@jest/globals';
import { KeyStateReporter, REPEAT_BAD_STATE_MS } from '../../../src/health/kek-state.js';
import { KEY_STATES, type KekRef, type KeyState } from '../../../src/kek/types.js';
import { createLogger } from '../../../src/observability/logger.js';
import { Metrics } from '../../../src/observability/metrics.js';

const ref: KekRef = { provider: 'vault', key: 'transit/keys/kek', version: '3' };

function setup(role = 'primary') {
  const clock = { t: 1_000_000 };
  const lines: string[] = [];
  const logger = createLogger({ level: 'trace', destination: { write: (s: string) => void lines.push(s) } });
  const metrics = new Metrics({ processMetrics: false });
  const owner = new KeyStateReporter({ logger, metrics, role, now: () => clock.t });
  const records = (): Array<Record<string, unknown>> =>
    lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { clock, owner, metrics, records };
}

async function series(metrics: Metrics): Promise<Array<{ labels: Record<string, unknown>; value: number }>> {
  return (await metrics.kekState.get()).values.map((v) => ({ labels: { ...v.labels }, value: v.value }));
}

describe('key state owner: log policy', () => {
  it('a change to a stop-writes state is one error line with the state and detail', () => {
    const { owner, records } = setup();
    owner.report({ ref, state: 'disabled', detail: 'key version 3 is disabled' });
    const r = records();
    expect(r).toHaveLength(1);
    expect(r[0]).toMatchObject({
      level: 'error',
      kek: 'vault:transit/keys/kek@3',
      role: 'primary',
      state: 'disabled',
      detail: 'key version 3 is disabled',
      msg: 'KEK is not usable for new data keys',
    });
    expect(owner.state).toBe('disabled');
  });

  it('a key going away is said so, loudly', () => {
    const { owner, records } = setup();
    owner.report({ ref, state: 'pending_deletion', detail: 'deletion on 2026-12-24' });
    expect(records()[0]).toMatchObject({ level: 'error', state: 'pending_deletion' });
    expect(String(records()[0].msg)).toMatch(/SCHEDULED FOR DELETION OR DESTROYED/);
  });

  it('a bad state that does not stop writes (unavailable) is a warning', () => {
    const { owner, records } = setup();
    owner.report({ ref, state: 'unavailable', detail: 'Vault is sealed' });
    expect(records()).toEqual([
      expect.objectContaining({ level: 'warn', state: 'unavailable', detail: 'Vault is sealed' }),
    ]);
  });

  it(`repeats while bad at most every ${REPEAT_BAD_STATE_MS / 60_000} minutes, on a fake clock`, () => {
    const { clock, owner, records } = setup();
    const errors = (): number => records().filter((r) => r.level === 'error').length;
    owner.report({ ref, state: 'disabled' });
    expect(errors()).toBe(1);
    // Probes every minute for just under the repeat interval: no new line.
    for (let i = 1; i < REPEAT_BAD_STATE_MS / 60_000; i++) {
      clock.t += 60_000;
      owner.report({ ref, state: 'disabled' });
    }
    expect(errors()).toBe(1);
    clock.t += 60_000; // exactly REPEAT_BAD_STATE_MS after the first line
    owner.report({ ref, state: 'disabled' });
    expect(errors()).toBe(2);
    clock.t += 1;
    owner.report({ ref, state: 'disabled' });
    expect(errors()).toBe(2);
  });

  it('a change between bad states logs at once, whatever the clock', () => {
    const { owner, records } = setup();
    owner.report({ ref, state: 'disabled' });
    owner.report({ ref, state: 'pending_deletion' });
    owner.report({ ref, state: 'pending_deletion' });
    expect(records().map((r) => r.state)).toEqual(['disabled', 'pending_deletion']);
  });

  it('recovery is one info line; an enabled key stays quiet', () => {
    const { owner, records } = setup();
    owner.report({ ref, state: 'enabled' });
    owner.report({ ref, state: 'enabled' });
    expect(records()).toEqual([expect.objectContaining({ level: 'info', msg: 'KEK enabled' })]);
    owner.report({ ref, state: 'disabled' });
    owner.report({ ref, state: 'enabled' });
    owner.report({ ref, state: 'enabled' });
    const r = records();
    expect(r).toHaveLength(3);
    expect(r[2]).toMatchObject({ level: 'info', state: 'enabled', msg: 'KEK enabled again (was disabled)' });
  });

  it('after a recovery, the next bad state logs at once (the repeat clock does not hold it back)', () => {
    const { owner, records } = setup();
    owner.report({ ref, state: 'disabled' });
    owner.report({ ref, state: 'enabled' });
    owner.report({ ref, state: 'disabled' });
    expect(records().filter((r) => r.level === 'error')).toHaveLength(2);
  });
});

describe('key state owner: the kms_plugin_kek_state metric', () => {
  it.each(KEY_STATES)('one-hot: %s is 1 and every other state 0', async (state: KeyState) => {
    const { owner, metrics } = setup();
    owner.report({ ref, state: state === 'enabled' ? 'disabled' : 'enabled' });
    owner.report({ ref, state });
    const s = await series(metrics);
    expect(s).toHaveLength(KEY_STATES.length);
    for (const v of s) {
      expect(v.labels).toMatchObject({ provider: 'vault', role: 'primary' });
      expect(v.value).toBe(v.labels.state === state ? 1 : 0);
    }
  });

  it('keeps the role label: a decrypt-only KEK has its own series beside the primary', async () => {
    const metrics = new Metrics({ processMetrics: false });
    const logger = createLogger({ level: 'silent' });
    const primary = new KeyStateReporter({ logger, metrics, role: 'primary' });
    const old = new KeyStateReporter({ logger, metrics, role: 'decrypt-only-0' });
    primary.report({ ref, state: 'enabled' });
    old.report({
      ref: { provider: 'aws', key: 'arn:aws:kms:eu-west-1:1:key/k', version: 'm1' },
      state: 'disabled',
    });
    const s = await series(metrics);
    const one = s.filter((v) => v.value === 1).map((v) => v.labels);
    expect(one).toEqual(
      expect.arrayContaining([
        { provider: 'vault', role: 'primary', state: 'enabled' },
        { provider: 'aws', role: 'decrypt-only-0', state: 'disabled' },
      ]),
    );
    expect(one).toHaveLength(2);
  });

  it('works without metrics (logs only)', () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', destination: { write: (l: string) => void lines.push(l) } });
    new KeyStateReporter({ logger, role: 'primary' }).report({ ref, state: 'destroyed' });
    expect(lines).toHaveLength(1);
  });
});
