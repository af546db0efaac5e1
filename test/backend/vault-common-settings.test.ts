/**
 * The common settings (issue 14: same names in every remote provider) reach the provider's
 * RemoteCaller: vault.maxAttempts, vault.timeout and vault.concurrency, which Vault did not have
 * before (it used RemoteCaller's defaults, which are still the defaults).
 */
import { randomBytes } from 'node:crypto';
import { VaultHarness, deadlineIn, useVaultHarness } from '../fakes/vault-transit/harness.js';

describe('vault common settings', () => {
  let h: VaultHarness;

  useVaultHarness((started) => (h = started));

  test('maxAttempts: 1 makes one attempt where the default makes a retry', async () => {
    const once = await h.provider({ maxAttempts: 1 });
    const v = await once.currentVersion(deadlineIn(3000));
    h.fake.faults.push({ match: 'encrypt', status: 500, errors: ['internal error'] });
    await expect(once.wrap(randomBytes(32), v, deadlineIn(3000))).rejects.toMatchObject({
      kind: 'unavailable',
    });
    expect(h.fake.count('transit/encrypt/kek')).toBe(1);

    const dflt = await h.provider();
    h.fake.faults.push({ match: 'encrypt', status: 500, errors: ['internal error'] });
    await dflt.wrap(randomBytes(32), v, deadlineIn(3000));
    expect(h.fake.count('transit/encrypt/kek')).toBe(3);
  });

  test('timeout bounds a call whose caller sets no deadline', async () => {
    const p = await h.provider({ timeout: '300ms' });
    const v = await p.currentVersion(deadlineIn(3000));
    h.fake.faults.push({ match: 'encrypt', hang: true });
    const started = Date.now();
    await expect(p.wrap(randomBytes(32), v, new AbortController().signal)).rejects.toMatchObject({
      kind: expect.stringMatching(/^(deadline|unavailable)$/),
    });
    // The default (10 s) would still be waiting.
    expect(Date.now() - started).toBeLessThan(5000);
  });

  test('concurrency: 1 queues a second call behind a hanging one; the default lets it through', async () => {
    const one = await h.provider({ concurrency: 1 });
    const v = await one.currentVersion(deadlineIn(3000));
    h.fake.faults.push({ match: 'encrypt', hang: true });
    const first = one.wrap(randomBytes(32), v, deadlineIn(1500));
    await new Promise((r) => setTimeout(r, 100));
    await expect(one.wrap(randomBytes(32), v, deadlineIn(400))).rejects.toMatchObject({
      kind: expect.stringMatching(/^(deadline|unavailable)$/),
    });
    expect(h.fake.count('transit/encrypt/kek')).toBe(1);
    await expect(first).rejects.toBeDefined();

    const many = await h.provider();
    h.fake.faults.push({ match: 'encrypt', hang: true });
    const hanging = many.wrap(randomBytes(32), v, deadlineIn(1500));
    await new Promise((r) => setTimeout(r, 100));
    await many.wrap(randomBytes(32), v, deadlineIn(3000));
    await expect(hanging).rejects.toBeDefined();
  });
});
