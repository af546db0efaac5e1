import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Checkpoint } from '../../../../src/cli/reencrypt/checkpoint.js';
import { ConfigError } from '../../../../src/errors.js';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'kkp-cp-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('Checkpoint', () => {
  test('a missing file starts fresh; save writes it atomically (mode 0600, no temp file left)', () => {
    const file = join(dir, 'cp.json');
    const cp = Checkpoint.open(file, 'https://k:6443', 'update');
    expect(cp.resumed).toBe(false);
    const r = cp.resource('secrets');
    r.continue = 'tok';
    r.after = 'ns/name';
    r.counts.rewritten = 5;
    cp.save();
    expect(readdirSync(dir)).toEqual(['cp.json']);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const again = Checkpoint.open(file, 'https://k:6443', 'update');
    expect(again.resumed).toBe(true);
    expect(again.resource('secrets')).toMatchObject({
      continue: 'tok',
      after: 'ns/name',
      counts: { rewritten: 5, conflicts: 0 },
    });
  });

  test('without a file nothing is written', () => {
    const cp = Checkpoint.open(undefined, 's', 'svm');
    cp.resource('x').done = true;
    cp.save();
    expect(readdirSync(dir)).toEqual([]);
  });

  test('a checkpoint of another server or method, or not a checkpoint, is refused naming --checkpoint', () => {
    const file = join(dir, 'cp.json');
    Checkpoint.open(file, 'https://a:6443', 'update').save();
    expect(() => Checkpoint.open(file, 'https://b:6443', 'update')).toThrow(
      /written for API server https:\/\/a:6443/,
    );
    expect(() => Checkpoint.open(file, 'https://a:6443', 'svm')).toThrow(/--method update/);
    writeFileSync(file, 'not json');
    expect(() => Checkpoint.open(file, 'https://a:6443', 'update')).toThrow(ConfigError);
    writeFileSync(file, '{"version":7}');
    expect(() => Checkpoint.open(file, 'https://a:6443', 'update')).toThrow(/not a reencrypt checkpoint/);
  });

  test('holds names and tokens only: the file is plain JSON a person can read', () => {
    const file = join(dir, 'cp.json');
    const cp = Checkpoint.open(file, 's', 'update');
    cp.resource('secrets').failures['HTTP 403 Forbidden'] = {
      count: 1,
      message: 'forbidden',
      examples: ['a/b'],
    };
    cp.save();
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({
      version: 1,
      server: 's',
      method: 'update',
    });
  });
});
