import { createHash } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { deriveKeyId, looksLikeKeyId } from '../../../src/envelope/keyid.js';
import { PROVIDER_KINDS } from '../../../src/kek/types.js';
import type { KekRef } from '../../../src/kek/types.js';

const base: KekRef = {
  provider: 'aws',
  key: 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
  version: 'material-7',
  unique: '2026-01-02T03:04:05Z',
};

describe('deriveKeyId', () => {
  it('is deterministic (same ref, same generation → same id; independent of object identity and field order)', () => {
    const a = deriveKeyId(base, 0);
    const reordered: KekRef = {
      unique: base.unique,
      version: base.version,
      key: base.key,
      provider: base.provider,
    };
    expect(deriveKeyId({ ...base }, 0)).toBe(a);
    expect(deriveKeyId(reordered, 0)).toBe(a);
  });

  it('is ASCII, ≤ 1024 bytes, and has the documented shape', () => {
    const id = deriveKeyId(base, 0);
    expect(/^[\x20-\x7e]+$/.test(id)).toBe(true);
    expect(Buffer.byteLength(id)).toBeLessThanOrEqual(1024);
    expect(id).toMatch(/^aws-[0-9a-f]{40}$/);
    expect(looksLikeKeyId(id)).toBe(true);
  });

  it('stays short even for a huge key resource', () => {
    const id = deriveKeyId({ ...base, key: 'k'.repeat(5000), version: 'v'.repeat(3000) }, 999999);
    expect(Buffer.byteLength(id)).toBeLessThanOrEqual(1024);
  });

  it.each<[string, KekRef, number]>([
    ['provider', { ...base, provider: 'gcp' }, 0],
    ['key', { ...base, key: `${base.key}x` }, 0],
    ['version', { ...base, version: 'material-8' }, 0],
    ['unique', { ...base, unique: '2026-01-02T03:04:06Z' }, 0],
    ['unique absent', { provider: base.provider, key: base.key, version: base.version }, 0],
    ['generation', base, 1],
  ])('changes with %s', (_what, ref, gen) => {
    expect(deriveKeyId(ref, gen)).not.toBe(deriveKeyId(base, 0));
  });

  it('has no ambiguity between fields (key "a:b" version "c" ≠ key "a" version "b:c")', () => {
    const r1: KekRef = { provider: 'vault', key: 'a:b', version: 'c' };
    const r2: KekRef = { provider: 'vault', key: 'a', version: 'b:c' };
    expect(deriveKeyId(r1, 0)).not.toBe(deriveKeyId(r2, 0));
  });

  it('contains neither the key resource nor any part of it, nor the version or unique', () => {
    const secretish: KekRef = {
      provider: 'vault',
      key: 'https://vault.example:8200/transit/keys/secret-name',
      version: '42',
      unique: 'zzz-unique-zzz',
    };
    const id = deriveKeyId(secretish, 0);
    expect(id).not.toContain('vault.example');
    expect(id).not.toContain('secret-name');
    expect(id).not.toContain('zzz');
    expect(id).toMatch(/^vault-[0-9a-f]{40}$/);
  });

  it('every provider kind gives an id that looksLikeKeyId accepts', () => {
    // Every kind of the provider catalog (pkcs11 was missing from a hand-written list before).
    expect(PROVIDER_KINDS).toContain('pkcs11');
    for (const provider of PROVIDER_KINDS) {
      expect(looksLikeKeyId(deriveKeyId({ ...base, provider }, 0))).toBe(true);
    }
    expect(looksLikeKeyId('aws-xyz')).toBe(false);
    expect(looksLikeKeyId(`hsm-${'a'.repeat(40)}`)).toBe(false);
    expect(looksLikeKeyId(`aws-${'a'.repeat(41)}`)).toBe(false);
  });

  it('is a known value (pins the derivation so replicas of different builds agree)', () => {
    // sha256("k8s-kms-plugin/key-id/v1\0" + canonical JSON) computed independently here.
    const canonical = `{"g":0,"k":${JSON.stringify(base.key)},"p":"aws","u":${JSON.stringify(base.unique)},"v":"material-7"}`;
    const expected = `aws-${createHash('sha256').update('k8s-kms-plugin/key-id/v1\0').update(canonical).digest('hex').slice(0, 40)}`;
    expect(deriveKeyId(base, 0)).toBe(expected);
  });
});
