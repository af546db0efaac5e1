/**
 * CredentialFile: the one "re-read on change, keep the old one on a bad new one" rule every
 * provider uses. Real files in a temp dir, rotated the ways Kubernetes and operators do it
 * (rewrite in place, rename over, Secret-volume symlink swap, delete).
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import {
  CredentialFile,
  jwtExpiry,
  parseJwt,
  parsePem,
  parseSecretText,
} from '../../../src/kek/credential-file.js';
import { PermissionDeniedError } from '../../../src/errors.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { captureLogger } from '../../fakes/aws-kms/harness.js';

const dir = mkdtempSync(join(tmpdir(), 'credfile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

function setup(
  initial: string | undefined,
  extra: {
    now?: () => number;
    expiresAt?: (v: string) => number | undefined;
    parse?: (b: Buffer) => string;
  } = {},
) {
  const path = join(dir, `cred-${n++}`);
  if (initial !== undefined) writeFileSync(path, initial);
  const metrics = new Metrics({ processMetrics: false });
  const log = captureLogger('info');
  const file = new CredentialFile<string>({
    path,
    field: 'test.tokenFile',
    provider: 'test',
    parse: extra.parse ?? parseSecretText,
    expiresAt: extra.expiresAt,
    now: extra.now,
    logger: log.logger,
    metrics,
  });
  const reloads = async (outcome: string): Promise<number> =>
    (await metrics.credentialReloads.get()).values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
  return { path, file, log, reloads };
}

/** A rewrite always changes size or mtime: make the size differ so coarse mtimes do not matter. */
describe('CredentialFile', () => {
  it('loads, then picks up a rewritten file at the very next get()', async () => {
    const { path, file, reloads } = setup('token-one');
    expect(file.get()).toBe('token-one');
    expect(file.version).toBe(1);
    writeFileSync(path, 'token-number-two');
    expect(file.get()).toBe('token-number-two');
    expect(file.version).toBe(2);
    expect(await reloads('ok')).toBe(1);
    // Unchanged: no reload counted, same version.
    expect(file.get()).toBe('token-number-two');
    expect([file.version, await reloads('ok')]).toEqual([2, 1]);
  });

  it('picks up a file renamed over the old one and a Secret-volume symlink swap', async () => {
    const { path, file, reloads } = setup('first');
    file.get();
    writeFileSync(`${path}.new`, 'second');
    renameSync(`${path}.new`, path);
    expect(file.get()).toBe('second');

    // Secret volume layout: file -> ..data/file, ..data -> ..<timestamp>
    const vol = join(dir, `vol-${n++}`);
    mkdirSync(join(vol, '..v1'), { recursive: true });
    writeFileSync(join(vol, '..v1', 'token'), 'volume-one');
    symlinkSync('..v1', join(vol, '..data'));
    symlinkSync('..data/token', join(vol, 'token'));
    const metrics = new Metrics({ processMetrics: false });
    const f2 = new CredentialFile({
      path: join(vol, 'token'),
      field: 'x',
      provider: 'test',
      parse: parseSecretText,
      logger: captureLogger().logger,
      metrics,
    });
    expect(f2.get()).toBe('volume-one');
    mkdirSync(join(vol, '..v2'));
    writeFileSync(join(vol, '..v2', 'token'), 'volume-two');
    symlinkSync('..v2', join(vol, '..data.tmp'));
    renameSync(join(vol, '..data.tmp'), join(vol, '..data'));
    expect(f2.get()).toBe('volume-two');
    expect(await reloads('ok')).toBe(1);
  });

  it('a bad new file is logged once (no content), counted, and the old value kept', async () => {
    const { path, file, log, reloads } = setup('good-secret-value');
    file.get();
    writeFileSync(path, '   \n');
    expect(file.get()).toBe('good-secret-value');
    expect(file.get()).toBe('good-secret-value');
    expect(file.version).toBe(1);
    expect(await reloads('error')).toBe(1);
    const warns = log.entries().filter((e) => e.level === 'warn');
    expect(warns).toHaveLength(1);
    expect(warns[0]).toMatchObject({ field: 'test.tokenFile', file: path });
    expect(String(warns[0].reason)).toMatch(/empty/);
    // Deleted: still the old value, one more error.
    unlinkSync(path);
    expect(file.get()).toBe('good-secret-value');
    expect(await reloads('error')).toBe(2);
    // A good file again: adopted.
    writeFileSync(path, 'the-next-secret');
    expect(file.get()).toBe('the-next-secret');
    expect(await reloads('ok')).toBe(1);
    expect(log.lines.join('\n')).not.toContain('good-secret-value');
    expect(log.lines.join('\n')).not.toContain('the-next-secret');
  });

  it('keeps the old value only until it expires', () => {
    let now = 1_000_000;
    const { path, file } = setup('aaa', { now: () => now, expiresAt: () => 1_000_000 + 60_000 });
    expect(file.get()).toBe('aaa');
    writeFileSync(path, 'two words');
    expect(file.get()).toBe('aaa');
    now += 61_000;
    expect(() => file.get()).toThrow(PermissionDeniedError);
    expect(() => file.get()).toThrow(/expired and the file cannot be used: .*single value/);
    writeFileSync(path, 'fresh-one');
    expect(file.get()).toBe('fresh-one');
  });

  it('the first load has no fallback: a clear error naming the field', () => {
    const missing = setup(undefined);
    expect(() => missing.file.get()).toThrow(/cannot read test\.tokenFile .*\(ENOENT\)/);
    const empty = setup('');
    expect(() => empty.file.get()).toThrow(/test\.tokenFile .*: the file is empty/);
  });

  it('same bytes under a new stamp are not a reload', async () => {
    const { path, file, reloads } = setup('same');
    file.get();
    unlinkSync(path);
    writeFileSync(path, 'same');
    expect(file.get()).toBe('same');
    expect([file.version, await reloads('ok')]).toEqual([1, 0]);
  });
});

describe('parsers', () => {
  const jwt = (claims: object): string =>
    `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.c2ln`;
  it('JWTs: shape and exp', () => {
    const t = jwt({ exp: 2_000_000_000, sub: 'x' });
    expect(parseJwt(Buffer.from(`${t}\n`))).toBe(t);
    expect(jwtExpiry(t)).toBe(2_000_000_000_000);
    expect(jwtExpiry(jwt({}))).toBeUndefined();
    expect(() => parseJwt(Buffer.from('not-a-jwt'))).toThrow(/JWT/);
    expect(() => parseJwt(Buffer.from('a.b.c'))).toThrow(/JWT/);
  });
  it('PEM: certificate and key blocks', () => {
    const cert = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const key = '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n';
    expect(parsePem(true)(Buffer.from(cert + key))).toBe(cert + key);
    expect(parsePem(false)(Buffer.from(cert))).toBe(cert);
    expect(() => parsePem(true)(Buffer.from(cert))).toThrow(/PRIVATE KEY/);
    expect(() => parsePem(false)(Buffer.from('junk'))).toThrow(/CERTIFICATE/);
  });
});
