/**
 * `probe`: checks a running plugin the way kube-apiserver would: Status, then an Encrypt of a
 * random 32-byte seed validated with the apiserver's rules, then Decrypt and compare.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { annotationErrors } from '../envelope/annotations.js';
import { KmsClient } from '../server/client.js';

export interface ProbeStep {
  name: string;
  ok: boolean;
  detail: string;
  ms: number;
}

export interface ProbeOptions {
  socket: string;
  timeoutMs: number;
  /** Accept "v2beta1" (kube-apiserver 1.27/1.28 needs exactly that). */
  expectVersion?: 'v2' | 'v2beta1' | 'any';
}

export async function runProbe(options: ProbeOptions): Promise<ProbeStep[]> {
  const steps: ProbeStep[] = [];
  const client = new KmsClient(options.socket, { waitForReady: false });
  const step = async (name: string, fn: () => Promise<string>): Promise<boolean> => {
    const t = Date.now();
    try {
      const detail = await fn();
      steps.push({ name, ok: true, detail, ms: Date.now() - t });
      return true;
    } catch (err) {
      const e = err as { details?: string; message?: string; code?: number };
      steps.push({ name, ok: false, detail: e.details ?? e.message ?? String(err), ms: Date.now() - t });
      return false;
    }
  };
  try {
    let keyId = '';
    const statusOk = await step('status', async () => {
      const s = await client.status(options.timeoutMs);
      const problems: string[] = [];
      const expect = options.expectVersion ?? 'any';
      if (expect === 'any' ? !['v2', 'v2beta1'].includes(s.version) : s.version !== expect) {
        problems.push(
          `version ${JSON.stringify(s.version)} (expected ${expect === 'any' ? '"v2" or "v2beta1"' : JSON.stringify(expect)})`,
        );
      }
      if (s.healthz !== 'ok') problems.push(`healthz ${JSON.stringify(s.healthz)} (must be exactly "ok")`);
      if (!s.key_id || Buffer.byteLength(s.key_id) > 1024)
        problems.push('key_id empty or longer than 1024 bytes');
      keyId = s.key_id;
      if (problems.length) throw new Error(problems.join('; '));
      return `version=${s.version} healthz=ok key_id=${s.key_id}`;
    });
    if (!statusOk) return steps;
    const seed = randomBytes(32);
    let enc: Awaited<ReturnType<KmsClient['encrypt']>> | undefined;
    const encOk = await step('encrypt', async () => {
      enc = await client.encrypt({ plaintext: seed, uid: randomUUID() }, options.timeoutMs);
      const problems: string[] = [];
      if (!enc.ciphertext?.length || enc.ciphertext.length > 1024)
        problems.push(`ciphertext is ${enc.ciphertext?.length ?? 0} bytes (1..1024 allowed)`);
      if (enc.key_id !== keyId)
        problems.push(
          `key_id ${enc.key_id} differs from Status key_id ${keyId}: kube-apiserver would discard it`,
        );
      problems.push(...annotationErrors(enc.annotations ?? {}));
      if (enc.ciphertext && Buffer.from(enc.ciphertext).includes(seed))
        problems.push('ciphertext contains the plaintext');
      if (problems.length) throw new Error(problems.join('; '));
      return `ciphertext ${enc.ciphertext.length} bytes, ${Object.keys(enc.annotations ?? {}).length} annotation(s), key_id matches Status`;
    });
    if (!encOk || !enc) return steps;
    const e = enc;
    await step('decrypt', async () => {
      const dec = await client.decrypt(
        { ciphertext: e.ciphertext, key_id: e.key_id, annotations: e.annotations, uid: randomUUID() },
        options.timeoutMs,
      );
      if (!Buffer.from(dec.plaintext).equals(seed))
        throw new Error('Decrypt returned different bytes than were encrypted');
      return 'round trip ok (plaintext identical)';
    });
    return steps;
  } finally {
    client.close();
  }
}

/**
 * The key versions a running plugin holds, from its `/healthz?verbose` (`kek-versions` check).
 * With `expectLoaded`, fails unless that version is loaded (e.g. staged on every node before
 * `rotate --promote`).
 */
export async function probeLoadedVersions(
  healthAddr: string,
  timeoutMs: number,
  expectLoaded?: string,
): Promise<ProbeStep> {
  const t = Date.now();
  const url = `http://${healthAddr}/healthz?verbose`;
  const done = (ok: boolean, detail: string): ProbeStep => ({
    name: 'kek-versions',
    ok,
    detail,
    ms: Date.now() - t,
  });
  let body: string;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    body = await res.text();
  } catch (err) {
    return done(false, `cannot read ${url}: ${(err as Error).message} (check --health-addr)`);
  }
  const line = body.split('\n').find((l) => l.startsWith('[+]kek-versions ok: loaded: '));
  if (!line) return done(false, `${url} lists no kek-versions (the plugin holds no local key versions)`);
  const loaded = line.slice('[+]kek-versions ok: loaded: '.length).replace(/ \(\d+s ago\)$/, '');
  if (expectLoaded !== undefined) {
    const versions = loaded.split(',').flatMap((p) => p.trim().split(' ').slice(1));
    if (!versions.includes(expectLoaded))
      return done(false, `version ${expectLoaded} is NOT loaded (${loaded})`);
    return done(true, `version ${expectLoaded} loaded (${loaded})`);
  }
  return done(true, loaded);
}
