/**
 * `inspect` in process, on values built from a real Envelope over a local key file (the
 * CLI-process version is in test/integration/rotation-breakglass.test.ts; decryptEtcdValue in
 * decrypt-etcd-value.test.ts).
 */
import { describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { formatInspection, inspectValue } from '../../../src/cli/inspect.js';
import { dekIdOf } from '../../../src/envelope/envelope.js';
import { etcdValueFixture } from './etcd-value-fixture.js';

const fx = etcdValueFixture();
const { etcdValue } = fx;

describe('inspectValue', () => {
  it('reports what protects the value, and nothing secret', () => {
    const i = inspectValue(etcdValue(1));
    const w = fx.envelope().writeInfo()!;
    expect(i).toMatchObject({
      storage: 'kms-v2',
      providerName: 'main',
      keyId: w.keyId,
      dekSourceType: 1,
      ours: true,
      kek: w.ref,
      keyIdGeneration: 3,
      keyIdConsistent: true,
      dekId: w.dekId,
      formatVersion: 2,
      formatKnown: true,
    });
    const text = formatInspection(i);
    expect(text).toContain(`dek id:`);
    expect(text).toContain(w.dekId);
    expect(text).toMatch(/key-id generation:\s+3/);
    const wrapped = fx.envelope().encrypt(randomBytes(32)).annotations['dek.k8s-kms-plugin.io'];
    expect(dekIdOf(wrapped)).toBe(w.dekId);
    expect(text).not.toContain(wrapped.toString('base64'));
  });

  it('flags a key_id that does not match the KEK reference, and annotations that are not ours', () => {
    const altered = inspectValue(etcdValue(1, (o) => (o.keyID = 'local-' + '0'.repeat(40))));
    expect(altered.keyIdConsistent).toBe(false);
    expect(formatInspection(altered)).toContain('DOES NOT MATCH');
    const foreign = inspectValue(
      etcdValue(0, (o) => (o.annotations = { 'version.other-plugin.example.com': Buffer.from('2') })),
    );
    expect(foreign).toMatchObject({
      storage: 'kms-v2',
      ours: false,
      dekSourceType: 0,
      annotationKeys: ['version.other-plugin.example.com'],
    });
    expect(formatInspection(foreign)).toContain('not k8s-kms-plugin');
  });
});
