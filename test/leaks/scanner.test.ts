/**
 * The leak scanner finds what it must (so the provider leak tests can fail) and nothing else.
 */
import { describe, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { SecretScanner } from './scanner.js';

describe('SecretScanner', () => {
  const dek = randomBytes(32);
  const token = `hvs.${randomBytes(18).toString('base64url')}`;
  const scanner = new SecretScanner();
  scanner.add('dek', dek);
  scanner.add('token', token);

  const planted: Array<[string, string]> = [
    ['hex', `{"msg":"x","k":"${dek.toString('hex')}"}`],
    ['HEX', `key=${dek.toString('hex').toUpperCase()}`],
    ['base64', `{"dek":"${dek.toString('base64')}"}`],
    ['base64url', dek.toString('base64url')],
    ['base64 inside a longer blob', Buffer.concat([randomBytes(7), dek, randomBytes(5)]).toString('base64')],
    ['base64url inside a longer blob', Buffer.concat([randomBytes(8), dek]).toString('base64url')],
    ['truncated base64', `err: ${dek.toString('base64').slice(5, 30)}…`],
    ['truncated hex', dek.toString('hex').slice(10, 40)],
    ['raw bytes', `bytes: ${dek.toString('latin1')}`],
    ['token text', `X-Vault-Token: ${token}`],
    ['token JSON-escaped', JSON.stringify({ t: token })],
    ['token base64', Buffer.from(`Bearer ${token}`).toString('base64')],
  ];
  test.each(planted)('finds a secret planted as %s', (_form, text) => {
    expect(scanner.scan({ text }).length).toBeGreaterThan(0);
  });

  test('no hits in unrelated text of the same shapes', () => {
    const text = [
      randomBytes(64).toString('hex'),
      randomBytes(64).toString('base64'),
      `hvs.${randomBytes(18).toString('base64url')}`,
      '{"level":"trace","msg":"rpc","keyId":"k8s-kms-plugin-0123456789abcdef"}',
    ].join('\n');
    expect(scanner.scan({ text })).toEqual([]);
  });

  test('refuses secrets too short to scan for', () => {
    expect(() => new SecretScanner().add('short', 'abc')).toThrow(/too short/);
  });
});
