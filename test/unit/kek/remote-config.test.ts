/** remoteRetry: the common settings become RemoteCaller's retry policy; unset ones keep its defaults. */
import { describe, expect, it } from '@jest/globals';
import { remoteRetry } from '../../../src/kek/remote-config.js';
import { DEFAULT_RETRY } from '../../../src/kek/remote.js';

describe('remoteRetry', () => {
  it('maps timeout, attemptTimeout and maxAttempts', () => {
    expect(remoteRetry({ timeout: 7000, attemptTimeout: 1500, maxAttempts: 2, concurrency: 3 })).toEqual({
      defaultDeadlineMs: 7000,
      attemptTimeoutMs: 1500,
      maxAttempts: 2,
    });
  });

  it('leaves out what is not set, so RemoteCaller defaults stay (a spread must not write undefined)', () => {
    const r = remoteRetry({});
    expect(r).toEqual({});
    expect({ ...DEFAULT_RETRY, ...r }).toEqual(DEFAULT_RETRY);
  });
});
