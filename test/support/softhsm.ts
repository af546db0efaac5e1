/**
 * SoftHSM for tests: every test file gets its own token directory and config (SOFTHSM2_CONF) in a
 * temp dir, initialised with softhsm2-util, and keys made with pkcs11-tool (the commands
 * docs/providers/pkcs11.md shows).
 *
 * SoftHSM is a hard requirement in CI (CI=true): `describeSoftHsm` then fails instead of skipping.
 * Locally a missing SoftHSM skips the suite with a note.
 */
import { describe, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SHARE_ENV, Worker } from 'node:worker_threads';
import { Pkcs11Module } from '../../src/kek/pkcs11/module.js';
import { tempDir } from './plugin-process.js';

export const SOFTHSM_MODULE = process.env.SOFTHSM2_MODULE ?? '/usr/lib/softhsm/libsofthsm2.so';

function onPath(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function softHsmMissing(): string | undefined {
  if (!existsSync(SOFTHSM_MODULE)) return `${SOFTHSM_MODULE} not found (apt-get install softhsm2)`;
  if (!onPath('softhsm2-util')) return 'softhsm2-util not on PATH (apt-get install softhsm2)';
  if (!onPath('pkcs11-tool')) return 'pkcs11-tool not on PATH (apt-get install opensc)';
  return undefined;
}

/** `describe` when SoftHSM is installed; otherwise skip locally, fail in CI. */
export function describeSoftHsm(name: string, fn: () => void): void {
  const missing = softHsmMissing();
  if (missing === undefined) {
    describe(name, fn);
  } else if (process.env.CI === 'true' || process.env.CI === '1') {
    describe(name, () => {
      it('needs SoftHSM (required in CI)', () => {
        throw new Error(`SoftHSM is required in CI: ${missing}`);
      });
    });
  } else {
    console.warn(`skipping ${name}: ${missing}`);
    describe.skip(name, fn);
  }
}

export class SoftHsm {
  readonly dir: string;
  readonly conf: string;
  private readonly tmp: { path: string; cleanup(): void };
  private n = 0;

  constructor() {
    this.tmp = tempDir('kkp-softhsm-');
    this.dir = this.tmp.path;
    mkdirSync(join(this.dir, 'tokens'), { mode: 0o700 });
    this.conf = join(this.dir, 'softhsm2.conf');
    writeFileSync(
      this.conf,
      `directories.tokendir = ${join(this.dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`,
    );
  }

  /** Env for child processes (and this process, via `activate`). */
  get env(): NodeJS.ProcessEnv {
    return { ...process.env, SOFTHSM2_CONF: this.conf };
  }

  /**
   * Points this process's SoftHSM at the temp config (before the module is initialised). Jest
   * gives test code a copy of process.env, so the real environment (which the native module
   * reads with getenv) is set from a worker thread sharing it (SHARE_ENV).
   */
  async activate(): Promise<this> {
    process.env.SOFTHSM2_CONF = this.conf;
    const w = new Worker('process.env.SOFTHSM2_CONF = require("worker_threads").workerData;', {
      eval: true,
      env: SHARE_ENV,
      workerData: this.conf,
    });
    await new Promise((resolve, reject) => {
      w.once('exit', resolve);
      w.once('error', reject);
    });
    return this;
  }

  /** Initialises a token; returns its label, PIN and a PIN file holding the PIN. */
  initToken(label: string, pin = `pin-${label}-1234`): { label: string; pin: string; pinFile: string } {
    this.run('softhsm2-util', [
      '--init-token',
      '--free',
      '--label',
      label,
      '--so-pin',
      'so-pin-k8s-kms-4f1d',
      '--pin',
      pin,
    ]);
    this.n += 1;
    const pinFile = join(this.dir, `pin-${this.n}`);
    writeFileSync(pinFile, `${pin}\n`, { mode: 0o600 });
    return { label, pin, pinFile };
  }

  /** pkcs11-tool against the token (as the docs show it). */
  tool(token: string, pin: string, args: string[]): string {
    return this.run('pkcs11-tool', [
      '--module',
      SOFTHSM_MODULE,
      '--token-label',
      token,
      '--login',
      '--pin',
      pin,
      ...args,
    ]);
  }

  /** Version `version` of an AES-256 KEK, made with pkcs11-tool. */
  aesKey(token: string, pin: string, label: string, version: number): void {
    this.tool(token, pin, [
      '--keygen',
      '--key-type',
      'AES:32',
      '--label',
      label,
      '--id',
      version.toString(16).padStart(8, '0'),
      '--sensitive',
      '--usage-decrypt',
      '--usage-wrap',
    ]);
  }

  /** The token's directory on disk (to "remove" the token by moving it away). */
  tokenDirs(): string[] {
    return execFileSync('ls', [join(this.dir, 'tokens')], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map((d) => join(this.dir, 'tokens', d));
  }

  run(cmd: string, args: string[]): string {
    return execFileSync(cmd, args, { env: this.env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  cleanup(): void {
    this.tmp.cleanup();
  }
}

/**
 * Runs `fn` on a fresh read-write session of `tokenLabel` through this process's (shared) module,
 * logged in unless the plugin's sessions already are. `fn` may close all sessions.
 */
export async function onToken<T>(
  tokenLabel: string,
  pin: string,
  fn: (m: Pkcs11Module, session: Buffer, slot: Buffer) => T,
): Promise<T> {
  const m = await Pkcs11Module.open(SOFTHSM_MODULE);
  try {
    const slot = m.lib
      .C_GetSlotList(true)
      .find((x) => m.lib.C_GetTokenInfo(x).label.trim() === tokenLabel) as Buffer;
    const s = m.lib.C_OpenSession(slot, m.api.CKF_SERIAL_SESSION | m.api.CKF_RW_SESSION);
    try {
      try {
        m.lib.C_Login(s, m.api.CKU_USER, pin);
      } catch {
        // already logged in through the plugin's sessions
      }
      return fn(m, s, slot);
    } finally {
      try {
        m.lib.C_CloseSession(s);
      } catch {
        // closed by fn (C_CloseAllSessions)
      }
    }
  } finally {
    await m.release();
  }
}

/** The secret key object of version `version` of `label` (CKA_ID scheme of docs/providers/pkcs11.md). */
export function findKeyObject(m: Pkcs11Module, s: Buffer, label: string, version: number): Buffer {
  const id = Buffer.alloc(4);
  id.writeUInt32BE(version);
  m.lib.C_FindObjectsInit(s, [
    { type: m.api.CKA_LABEL, value: label },
    { type: m.api.CKA_ID, value: id },
    { type: m.api.CKA_CLASS, value: m.api.CKO_SECRET_KEY },
  ]);
  const [h] = m.lib.C_FindObjects(s, 1);
  m.lib.C_FindObjectsFinal(s);
  return h;
}
