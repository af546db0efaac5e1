import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { devDefaults } from '../../../src/cli/serve.js';
import { envName, parseDuration } from '../../../src/config/fields.js';
import {
  configDeprecations,
  loadConfig,
  readConfigFile,
  validateConfig,
  type LoadOptions,
} from '../../../src/config/load.js';
import { MAX_PLAINTEXT_BYTES, allFlags } from '../../../src/config/schema.js';
import { configError } from '../../support/config-error.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kms-config-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function file(text: string): string {
  const p = join(dir, `c${(n += 1)}.yaml`);
  writeFileSync(p, text);
  return p;
}

const base = { local: { keyFile: '/keys/kek.json' } };
/** loadConfig with an empty environment unless given. */
const load = (o: LoadOptions = {}): ReturnType<typeof loadConfig> => loadConfig({ env: {}, ...o });

describe('defaults', () => {
  it('every default is as documented', () => {
    const c = validateConfig(base);
    expect(c).toEqual({
      listen: 'unix:///var/run/kmsplugin/kms.sock',
      socketMode: 0o600,
      statusVersion: 'v2',
      healthAddr: '127.0.0.1:8086',
      logLevel: 'info',
      shutdownTimeout: 10_000,
      maxPlaintextBytes: MAX_PLAINTEXT_BYTES,
      keyIdGeneration: 0,
      dek: { maxAge: 7 * 86_400_000, maxUses: 1_000_000, cacheSize: 1000, cacheTtl: 86_400_000 },
      probe: { interval: 60_000, jitter: 0.1, timeout: 10_000, stableObservations: 2, healthGrace: 300_000 },
      provider: 'local',
      local: {
        keyFile: '/keys/kek.json',
        allowInsecurePermissions: false,
        createIfMissing: false,
        watch: true,
      },
      decryptOnly: [],
    });
    expect(MAX_PLAINTEXT_BYTES).toBe(1024 - 61); // format 2: 29 bytes of framing + a 32-byte DEK commitment
  });

  it('nothing at all → the local section is required, with the fix', () => {
    const e = configError(() => load());
    expect(e.field).toBe('local');
    expect(e.message).toMatch(/"local:" section is missing/);
    expect(e.message).toMatch(/--local-\*/);
  });

  it('partial nested sections get the remaining defaults', () => {
    const c = validateConfig({ ...base, probe: { interval: '5s' }, dek: { maxUses: 10 } });
    expect(c.probe).toEqual({
      interval: 5000,
      jitter: 0.1,
      timeout: 10_000,
      stableObservations: 2,
      healthGrace: 300_000,
    });
    expect(c.dek).toEqual({ maxAge: 7 * 86_400_000, maxUses: 10, cacheSize: 1000, cacheTtl: 86_400_000 });
  });
});

describe('precedence: flag > env > file > defaults', () => {
  const f = (): string =>
    file(
      `listen: unix:///file.sock\nlocal:\n  keyFile: /file/kek.json\nprobe:\n  interval: 30s\ndek:\n  maxUses: 7\n`,
    );

  it('listen', () => {
    const path = f();
    expect(load({ defaults: base }).listen).toBe('unix:///var/run/kmsplugin/kms.sock');
    expect(load({ file: path }).listen).toBe('unix:///file.sock');
    expect(load({ file: path, env: { KMS_PLUGIN_LISTEN: 'unix:///env.sock' } }).listen).toBe(
      'unix:///env.sock',
    );
    expect(
      load({
        file: path,
        env: { KMS_PLUGIN_LISTEN: 'unix:///env.sock' },
        flags: { listen: 'unix:///flag.sock' },
      }).listen,
    ).toBe('unix:///flag.sock');
  });

  it('nested paths (probe.interval, local.keyFile, dek.maxUses) and typed env values', () => {
    const path = f();
    const fromFile = load({ file: path });
    expect(fromFile.probe.interval).toBe(30_000);
    expect(fromFile.local?.keyFile).toBe('/file/kek.json');
    expect(fromFile.dek.maxUses).toBe(7);
    const env = {
      KMS_PLUGIN_PROBE_INTERVAL: '2m',
      KMS_PLUGIN_LOCAL_KEY_FILE: '/env/kek.json',
      KMS_PLUGIN_DEK_MAX_USES: '9',
      KMS_PLUGIN_LOCAL_ALLOW_INSECURE_PERMISSIONS: 'true',
    };
    const fromEnv = load({ file: path, env });
    expect(fromEnv.probe.interval).toBe(120_000);
    expect(fromEnv.local?.keyFile).toBe('/env/kek.json');
    expect(fromEnv.local?.allowInsecurePermissions).toBe(true);
    expect(fromEnv.dek.maxUses).toBe(9);
    const fromFlags = load({
      file: path,
      env,
      flags: {
        'probe-interval': '3s',
        'local-key-file': '/flag/kek.json',
        'dek-max-uses': '11',
        'local-allow-insecure-permissions': false,
      },
    });
    expect(fromFlags.probe.interval).toBe(3000);
    expect(fromFlags.local?.keyFile).toBe('/flag/kek.json');
    expect(fromFlags.local?.allowInsecurePermissions).toBe(false);
    expect(fromFlags.dek.maxUses).toBe(11);
    // Sibling values from the file survive a nested override.
    expect(fromFlags.probe.jitter).toBe(0.1);
  });

  it('defaults (e.g. --dev) sit under the file', () => {
    const path = file('listen: unix:///from-file.sock\n');
    const c = load({ defaults: devDefaults('/repo'), file: path });
    expect(c.listen).toBe('unix:///from-file.sock');
    expect(c.local?.keyFile).toBe('/repo/.dev/local-kek.json');
  });

  it('an empty env var is ignored', () => {
    expect(load({ defaults: base, env: { KMS_PLUGIN_LISTEN: '' } }).listen).toBe(
      'unix:///var/run/kmsplugin/kms.sock',
    );
  });

  it('every flag has a KMS_PLUGIN_* env var derived from its name', () => {
    expect(envName({ name: 'aws-region', path: ['aws', 'region'], type: 'string', description: '' })).toBe(
      'KMS_PLUGIN_AWS_REGION',
    );
    const names = allFlags.map((fl) => fl.name);
    expect(new Set(names).size).toBe(names.length);
    for (const required of [
      'listen',
      'provider',
      'local-key-file',
      'status-version',
      'health-addr',
      'log-level',
    ]) {
      expect(names).toContain(required);
    }
  });

  it('--status-version, --health-addr, --log-level, --provider reach the config', () => {
    const c = load({
      defaults: base,
      flags: {
        'status-version': 'v2beta1',
        'health-addr': '127.0.0.1:9999',
        'log-level': 'debug',
        provider: 'local',
        listen: 'unix:///@kms',
      },
    });
    expect(c.statusVersion).toBe('v2beta1');
    expect(c.healthAddr).toBe('127.0.0.1:9999');
    expect(c.logLevel).toBe('debug');
    expect(c.listen).toBe('unix:///@kms');
  });
});

describe('errors name the field and the fix', () => {
  it.each<[string, Record<string, unknown>, string, RegExp]>([
    ['bad duration', { dek: { maxAge: 'soon' } }, 'dek.maxAge', /expected a duration like "7d".*"soon"/],
    ['duration below minimum', { dek: { maxAge: '30s' } }, 'dek.maxAge', /at least 60000 ms/],
    [
      'bad nested duration',
      { probe: { interval: '5 parsecs' } },
      'probe.interval',
      /expected a duration like "60s"/,
    ],
    [
      'nested unknown field',
      { probe: { intervall: '5s' } },
      'probe',
      /unknown field\(s\) "intervall": remove or fix the spelling/,
    ],
    ['top-level unknown field', { lisen: 'x' }, '(top level)', /unknown field\(s\) "lisen"/],
    ['listen with two slashes', { listen: 'unix://path' }, 'listen', /three slashes/],
    ['listen tcp', { listen: 'tcp://x' }, 'listen', /unix:\/\/\/absolute\/path\.sock or unix:\/\/\/@name/],
    ['listen relative', { listen: 'unix://relative/x.sock' }, 'listen', /three slashes/],
    ['bad socketMode', { socketMode: '999' }, 'socketMode', /octal mode like "0600".*"999"/],
    ['socketMode word', { socketMode: 'rw' }, 'socketMode', /octal/],
    [
      'bad statusVersion',
      { statusVersion: 'v3' },
      'statusVersion',
      /"v2" \(kube-apiserver 1\.29\+\) or "v2beta1"/,
    ],
    ['bad healthAddr', { healthAddr: 'localhost' }, 'healthAddr', /host:port/],
    ['bad logLevel', { logLevel: 'loud' }, 'logLevel', /./],
    ['bad maxPlaintextBytes', { maxPlaintextBytes: 2000 }, 'maxPlaintextBytes', /at most 963/],
    [
      'bad stableObservations',
      { probe: { stableObservations: 0 } },
      'probe.stableObservations',
      /at least 1/,
    ],
    ['bad jitter', { probe: { jitter: 2 } }, 'probe.jitter', /./],
    [
      'bad local.keyFile',
      { local: { keyFile: '  ' } },
      'local.keyFile',
      /must not be empty: set local\.keyFile/,
    ],
  ])('%s', (_name, over, field, msg) => {
    const e = configError(() => validateConfig({ ...base, ...over }));
    expect(e.field).toBe(field);
    expect(e.message).toContain(`${field}: `);
    expect(e.message).toMatch(msg);
  });

  it('a provider without its section', () => {
    const e = configError(() => validateConfig({ provider: 'aws' }));
    expect(e.field).toBe('aws');
    expect(e.message).toMatch(/provider is "aws" but the "aws:" section is missing; add it/);
  });

  it('an unknown provider lists the valid ones', () => {
    const e = configError(() => validateConfig({ ...base, provider: 'hsm' }));
    expect(e.field).toBe('provider');
    expect(e.message).toMatch(/local, aws, gcp, azure, vault/);
  });

  it('a decryptOnly entry without its section names the index', () => {
    const e = configError(() =>
      validateConfig({
        ...base,
        decryptOnly: [{ provider: 'local', local: { keyFile: '/a' } }, { provider: 'vault' }],
      }),
    );
    expect(e.field).toBe('decryptOnly.1.vault');
  });

  it('lists every problem, not only the first', () => {
    const e = configError(() => validateConfig({ ...base, statusVersion: 'v9', socketMode: 'x' }));
    expect(e.message).toContain('statusVersion: ');
    expect(e.message).toContain('socketMode: ');
  });

  it('a bad env value names the env var; a bad flag names the flag', () => {
    const e1 = configError(() =>
      load({ defaults: base, env: { KMS_PLUGIN_LOCAL_ALLOW_INSECURE_PERMISSIONS: 'maybe' } }),
    );
    expect(e1.field).toBe('KMS_PLUGIN_LOCAL_ALLOW_INSECURE_PERMISSIONS');
    expect(e1.message).toMatch(/expected true or false; got "maybe"/);
    const e2 = configError(() => load({ defaults: base, flags: { 'dek-max-uses': 'lots' } }));
    expect(e2.field).toBe('--dek-max-uses');
    expect(e2.message).toMatch(/expected a number/);
    const e3 = configError(() => load({ defaults: base, env: { KMS_PLUGIN_PROBE_INTERVAL: 'often' } }));
    expect(e3.field).toBe('probe.interval');
  });
});

describe('valid forms', () => {
  it.each([['unix:///var/run/kms.sock'], ['unix:///@kms-plugin'], ['unix:///tmp/a b.sock']])(
    'listen %s',
    (listen) => {
      expect(validateConfig({ ...base, listen }).listen).toBe(listen);
    },
  );

  it.each<[string | number, number]>([
    ['0600', 0o600],
    ['660', 0o660],
    ['0777', 0o777],
    [0o640, 0o640],
  ])('socketMode %j', (v, want) => {
    expect(validateConfig({ ...base, socketMode: v }).socketMode).toBe(want);
  });

  it('durations accept numbers as seconds, and healthAddr "" disables', () => {
    const c = validateConfig({ ...base, shutdownTimeout: 3, dek: { maxAge: 120 }, healthAddr: '' });
    expect(c.shutdownTimeout).toBe(3000);
    expect(c.dek.maxAge).toBe(120_000);
    expect(c.healthAddr).toBe('');
  });

  it('parseDuration', () => {
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('60s')).toBe(60_000);
    expect(parseDuration('5m')).toBe(300_000);
    expect(parseDuration('24h')).toBe(86_400_000);
    expect(parseDuration('7d')).toBe(604_800_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration(' 2s ')).toBe(2000);
    for (const bad of ['', '5', 's', '5 m', '-5s', '5w', '5s5', 'soon'])
      expect(parseDuration(bad)).toBeUndefined();
  });
});

describe('YAML file', () => {
  it('a missing file → --config error naming the path', () => {
    const missing = join(dir, 'nope.yaml');
    const e = configError(() => load({ file: missing }));
    expect(e.field).toBe('--config');
    expect(e.message).toContain(missing);
    expect(e.message).toContain('ENOENT');
  });

  it('invalid YAML', () => {
    const e = configError(() => readConfigFile(file('listen: [unclosed\n')));
    expect(e.field).toBe('--config');
    expect(e.message).toMatch(/is not valid YAML/);
  });

  it.each([['- a\n- b\n'], ['just a string\n'], ['42\n']])('not a mapping: %j', (text) => {
    const e = configError(() => readConfigFile(file(text)));
    expect(e.message).toMatch(/must contain a YAML mapping/);
  });

  it('an empty file is an empty config', () => {
    expect(readConfigFile(file(''))).toEqual({});
    expect(load({ file: file('# only a comment\n'), defaults: base }).listen).toBe(
      'unix:///var/run/kmsplugin/kms.sock',
    );
  });

  it('a full file', () => {
    const c = load({
      file: file(
        [
          'listen: unix:///@kms',
          'socketMode: "0660"',
          'statusVersion: v2beta1',
          'provider: local',
          'local:',
          '  keyFile: /k.json',
          '  watch: false',
          'dek:',
          '  maxAge: 1d',
          '  cacheTtl: 1h',
          'probe:',
          '  healthGrace: 90s',
        ].join('\n'),
      ),
    });
    expect(c.listen).toBe('unix:///@kms');
    expect(c.socketMode).toBe(0o660);
    expect(c.statusVersion).toBe('v2beta1');
    expect(c.local?.watch).toBe(false);
    expect(c.dek.maxAge).toBe(86_400_000);
    expect(c.dek.cacheTtl).toBe(3_600_000);
    expect(c.probe.healthGrace).toBe(90_000);
  });
});

describe('devDefaults (serve --dev)', () => {
  it('local KEK created on first start, a socket under /tmp, key file under the cwd', () => {
    expect(devDefaults('/work/repo')).toEqual({
      listen: 'unix:///tmp/k8s-kms-plugin/kms.sock',
      provider: 'local',
      local: { keyFile: '/work/repo/.dev/local-kek.json', createIfMissing: true },
    });
    expect((devDefaults().local as { keyFile: string }).keyFile).toBe(
      resolve(process.cwd(), '.dev/local-kek.json'),
    );
  });

  it('validates, and flags/env still override it', () => {
    const c = load({ defaults: devDefaults('/r') });
    expect(c.local).toEqual({
      keyFile: '/r/.dev/local-kek.json',
      createIfMissing: true,
      allowInsecurePermissions: false,
      watch: true,
    });
    expect(load({ defaults: devDefaults('/r'), flags: { listen: 'unix:///@dev' } }).listen).toBe(
      'unix:///@dev',
    );
    expect(
      load({ defaults: devDefaults('/r'), env: { KMS_PLUGIN_LOCAL_KEY_FILE: '/other.json' } }).local?.keyFile,
    ).toBe('/other.json');
  });
});

describe('one attemptTimeout for every provider; old names are deprecated aliases (issue 12.5)', () => {
  const sections = {
    aws: { keyId: 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab' },
    gcp: { keyName: 'projects/my-project/locations/global/keyRings/ring/cryptoKeys/kek' },
    azure: { vaultUrl: 'https://kv1.vault.azure.net', keyName: 'k' },
    vault: {
      address: 'https://vault.example:8200',
      keyName: 'kek',
      auth: { method: 'token', tokenFile: '/run/vault/token' },
    },
    pkcs11: {
      modulePath: '/usr/lib/softhsm/libsofthsm2.so',
      tokenLabel: 'k8s-kms',
      pinFile: '/etc/kms/pin',
      keyLabel: 'kek',
    },
  } as const;

  it.each(Object.keys(sections))('%s: attemptTimeout is accepted and unset by default', (p) => {
    const s = sections[p as keyof typeof sections];
    const plain = validateConfig({ provider: p, [p]: s }) as unknown as Record<
      string,
      Record<string, unknown>
    >;
    expect(plain[p].attemptTimeout).toBeUndefined();
    const set = validateConfig({ provider: p, [p]: { ...s, attemptTimeout: '2500ms' } }) as unknown as Record<
      string,
      Record<string, unknown>
    >;
    expect(set[p].attemptTimeout).toBe(2500);
    expect(configDeprecations(set as never)).toEqual([]);
  });

  it('gcp.callTimeout and azure.requestTimeout in a file still work, with a deprecation warning naming the new field', () => {
    const g = load({
      file: file(`provider: gcp\ngcp:\n  keyName: ${sections.gcp.keyName}\n  callTimeout: 1500ms\n`),
    });
    expect(g.gcp?.attemptTimeout).toBe(1500);
    expect(configDeprecations(g).join('\n')).toMatch(
      /gcp\.callTimeout is deprecated; use gcp\.attemptTimeout/,
    );
    const a = validateConfig({
      provider: 'local',
      local: base.local,
      decryptOnly: [{ provider: 'azure', azure: { ...sections.azure, requestTimeout: '3s' } }],
    });
    expect(a.decryptOnly[0].azure?.attemptTimeout).toBe(3000);
    expect(configDeprecations(a).join('\n')).toMatch(
      /decryptOnly\[0\]\.azure\.requestTimeout is deprecated; use decryptOnly\[0\]\.azure\.attemptTimeout/,
    );
  });

  it('old flag and env names are aliases with a warning; the new name wins when both are given', () => {
    const c = load({
      env: { KMS_PLUGIN_GCP_CALL_TIMEOUT: '900ms' },
      flags: { provider: 'gcp', 'gcp-key-name': sections.gcp.keyName },
    });
    expect(c.gcp?.attemptTimeout).toBe(900);
    expect(configDeprecations(c).join('\n')).toMatch(
      /KMS_PLUGIN_GCP_CALL_TIMEOUT is deprecated; use KMS_PLUGIN_GCP_ATTEMPT_TIMEOUT/,
    );
    const both = load({
      flags: {
        provider: 'azure',
        'azure-vault-url': sections.azure.vaultUrl,
        'azure-key-name': 'k',
        'azure-request-timeout': '5s',
        'azure-attempt-timeout': '1s',
      },
    });
    expect(both.azure?.attemptTimeout).toBe(1000);
    expect(configDeprecations(both).join('\n')).toMatch(
      /--azure-request-timeout is deprecated; use --azure-attempt-timeout/,
    );
  });
});
