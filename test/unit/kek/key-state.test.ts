/** src/kek/key-state.ts: which states stop writes, and the error mark the watcher reads. */
import { describe, expect, it } from '@jest/globals';
import { PluginError } from '../../../src/errors.js';
import { STOP_WRITES, keyStateOf, withKeyState } from '../../../src/kek/key-state.js';
import { KEY_STATES } from '../../../src/kek/types.js';

describe('STOP_WRITES', () => {
  it('is every key state that means the key is going or gone, and not enabled or unavailable', () => {
    expect([...STOP_WRITES].sort()).toEqual(
      [
        'destroyed',
        'disabled',
        'expired',
        'not_found',
        'not_yet_valid',
        'pending_deletion',
        'pending_import',
      ].sort(),
    );
    for (const s of STOP_WRITES) expect(KEY_STATES).toContain(s);
    expect(STOP_WRITES.has('enabled')).toBe(false);
    expect(STOP_WRITES.has('unavailable')).toBe(false);
  });
});

describe('withKeyState / keyStateOf', () => {
  it('marks an error with a state the watcher reads back, and nothing else is marked', () => {
    const e = withKeyState(new PluginError('key_disabled', 'gcp encrypt: key disabled'), 'disabled');
    expect(keyStateOf(e)).toBe('disabled');
    expect(keyStateOf(new PluginError('unavailable', 'down'))).toBeUndefined();
    expect(keyStateOf('not an error')).toBeUndefined();
  });
});
