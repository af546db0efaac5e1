/** Kubernetes-style health bodies (src/health/http-format.ts). The endpoints are in http.test.ts. */
import { describe, expect, it } from '@jest/globals';
import { renderChecks } from '../../../src/health/http-format.js';

describe('/healthz?verbose shows notes of ok checks', () => {
  it('prints an ok check note only when verbose', () => {
    const checks = [
      { name: 'dek', ok: true },
      { name: 'kek-versions', ok: true, reason: 'loaded: write 2, staged 3' },
    ];
    expect(renderChecks(checks, { verbose: true, endpoint: 'healthz' }).body).toBe(
      '[+]dek ok\n[+]kek-versions ok: loaded: write 2, staged 3\nhealthz check passed\n',
    );
    expect(renderChecks(checks, { verbose: false, endpoint: 'healthz' }).body).toBe('ok\n');
  });
});
