/**
 * One loaded PKCS#11 module per path, shared by every provider instance in the process (a second
 * C_Initialize of the same library fails with CKR_CRYPTOKI_ALREADY_INITIALIZED).
 *
 * The module can be re-initialised (C_Finalize + C_Initialize) after the token went away
 * (CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT, ...): many modules (SoftHSM among them) only see a
 * re-inserted token after that. Re-initialising while a native call runs on another thread would
 * pull the library out from under it, so `run()` counts native calls in flight and
 * `reinitialize()` waits for them to drain and holds new ones back meanwhile.
 *
 * pkcs11js is imported lazily: only a plugin configured with `provider: pkcs11` loads it.
 */
import type * as Pkcs11js from 'pkcs11js';
import { InvalidInputError, UnavailableError } from '../errors.js';

export type Pkcs11Lib = Pkcs11js.PKCS11;
export type Pkcs11Api = typeof Pkcs11js;

/** CKM_AES_KEY_WRAP_KWP (PKCS#11 v3.0, RFC 5649); pkcs11js predates it. */
export const CKM_AES_KEY_WRAP_KWP = 0x210b;

let apiPromise: Promise<Pkcs11Api> | undefined;

/** The pkcs11js binding (lazily imported; it is a native addon). */
export function loadApi(): Promise<Pkcs11Api> {
  apiPromise ??= import('pkcs11js').then(
    (m) => ((m as { default?: Pkcs11Api }).default ?? m) as Pkcs11Api,
    (err: unknown) => {
      apiPromise = undefined;
      throw new InvalidInputError(
        `pkcs11: the PKCS#11 binding (npm package pkcs11js) cannot be loaded: ${(err as Error).message}`,
      );
    },
  );
  return apiPromise;
}

const loaded = new Map<string, Pkcs11Module>();

export class Pkcs11Module {
  /** Bumped by every re-initialisation: session and object handles from older generations are void. */
  generation = 0;
  private refs = 0;
  private active = 0;
  private drained: Array<() => void> = [];
  private gate: Promise<void> | undefined;
  private finalized = false;

  private constructor(
    readonly api: Pkcs11Api,
    readonly lib: Pkcs11Lib,
    readonly path: string,
  ) {}

  /** Loads and initialises `path` once per process; every `open` needs a matching `release`. */
  static async open(path: string): Promise<Pkcs11Module> {
    const existing = loaded.get(path);
    if (existing) {
      existing.refs += 1;
      return existing;
    }
    const api = await loadApi();
    const lib = new api.PKCS11();
    try {
      lib.load(path);
    } catch (err) {
      throw new InvalidInputError(
        `pkcs11: cannot load the PKCS#11 module ${path} (${firstLine(err)}); check pkcs11.modulePath (--pkcs11-module): it must be the vendor's PKCS#11 library, readable by the plugin's user`,
      );
    }
    try {
      lib.C_Initialize({ flags: api.CKF_OS_LOCKING_OK });
    } catch (err) {
      if (!/CKR_CRYPTOKI_ALREADY_INITIALIZED/.test(String((err as Error).message))) {
        try {
          lib.close();
        } catch {
          // nothing more to release
        }
        throw new UnavailableError(`pkcs11: C_Initialize of ${path} failed (${firstLine(err)})`);
      }
    }
    const mod = new Pkcs11Module(api, lib, path);
    mod.refs = 1;
    loaded.set(path, mod);
    return mod;
  }

  /**
   * Runs native work; waits while the module is being re-initialised (a caller that gives up
   * meanwhile, RemoteCaller at the attempt's deadline, stops waiting; the work then sees its
   * aborted signal and does not start).
   */
  async run<T>(fn: (generation: number) => Promise<T>): Promise<T> {
    while (this.gate) await this.gate;
    if (this.finalized) throw new UnavailableError('pkcs11: the module was closed');
    this.active += 1;
    try {
      return await fn(this.generation);
    } finally {
      this.active -= 1;
      if (this.active === 0) for (const d of this.drained.splice(0)) d();
    }
  }

  /**
   * C_Finalize + C_Initialize once no native call is running. Callers inside `run()` must not
   * await this (they hold the count it waits for); they schedule it and return.
   */
  reinitialize(fromGeneration: number): Promise<void> {
    if (this.gate) return this.gate;
    if (fromGeneration !== this.generation) return Promise.resolve();
    this.gate = (async () => {
      if (this.active > 0) await new Promise<void>((resolve) => this.drained.push(resolve));
      try {
        this.lib.C_Finalize();
      } catch {
        // a module that lost its device may fail to finalise cleanly; initialise anyway
      }
      this.generation += 1;
      try {
        this.lib.C_Initialize({ flags: this.api.CKF_OS_LOCKING_OK });
      } catch {
        // left for the next call to report (it will fail with CKR_CRYPTOKI_NOT_INITIALIZED and retry)
      }
    })().finally(() => {
      this.gate = undefined;
    });
    return this.gate;
  }

  async release(): Promise<void> {
    this.refs -= 1;
    if (this.refs > 0) return;
    while (this.gate) await this.gate;
    if (this.active > 0) await new Promise<void>((resolve) => this.drained.push(resolve));
    loaded.delete(this.path);
    this.finalized = true;
    try {
      this.lib.C_Finalize();
    } catch {
      // already finalised or device gone
    }
    try {
      this.lib.close();
    } catch {
      // nothing more to release
    }
  }
}

function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0];
}
