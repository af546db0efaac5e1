/** The one reader for files named in config (src/kek/error-kit/config-file.ts). */
import { afterAll, describe, expect, it } from '@jest/globals';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ConfigError } from '../../../../src/errors.js';
import { readConfigFile, readConfigText, unreadableFile } from '../../../../src/kek/error-kit/config-file.js';
import { configError as caught } from '../../../support/config-error.js';

const dir = mkdtempSync(join(tmpdir(), 'kek-config-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('readConfigFile', () => {
  it('returns the bytes (and text) of a readable file', () => {
    const f = join(dir, 'ca.pem');
    writeFileSync(f, 'PEM\n');
    expect(readConfigFile(f, 'x.caFile').toString()).toBe('PEM\n');
    expect(readConfigText(f, 'x.caFile')).toBe('PEM\n');
  });

  it('a missing file: ConfigError naming the field, the path, the errno and the fix', () => {
    const e = caught(() => readConfigFile(join(dir, 'absent.pem'), 'vault.tls.caFile'));
    expect(e.field).toBe('vault.tls.caFile');
    expect(e.message).toBe(
      `config: vault.tls.caFile: cannot read ${join(dir, 'absent.pem')} (ENOENT); check the path and that the plugin's user can read it`,
    );
  });

  it('a directory and an unreadable file are ConfigErrors too, and never print the contents', () => {
    expect(caught(() => readConfigFile(dir, 'gcp.caFile')).message).toMatch(/\(EISDIR\)/);
    const f = join(dir, 'secret');
    writeFileSync(f, 'TOPSECRET');
    chmodSync(f, 0o000);
    try {
      // root reads anything: then only the success path can be checked
      let e: ConfigError | undefined;
      try {
        readConfigFile(f, 'azure.clientSecretFile', 'the client secret file');
      } catch (err) {
        e = err as ConfigError;
      }
      if (e) {
        expect(e).toBeInstanceOf(ConfigError);
        expect(e.message).toMatch(/azure.clientSecretFile: cannot read the client secret file .*\(EACCES\)/);
        expect(e.message).not.toContain('TOPSECRET');
      } else expect(process.getuid?.()).toBe(0);
    } finally {
      chmodSync(f, 0o600);
    }
  });

  it('unreadableFile words the message the runtime re-readers use as well', () => {
    const err = Object.assign(new Error('x'), { code: 'ENOENT' });
    expect(unreadableFile('/p', err, 'vault.auth.tokenFile')).toBe(
      "cannot read vault.auth.tokenFile /p (ENOENT); check the path and that the plugin's user can read it",
    );
    expect(unreadableFile('/p', {})).toBe(
      "cannot read /p (error); check the path and that the plugin's user can read it",
    );
  });
});
