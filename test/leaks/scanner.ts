/**
 * Finds secrets in captured text (log lines, metrics, error messages, health pages) in every form
 * they could plausibly take: raw bytes (UTF-8 and latin1 views), hex (both cases), base64 and
 * base64url (at all three byte alignments, so a secret inside a longer encoded blob is found too),
 * and, for text secrets, the text itself and its JSON-escaped form.
 */

export interface Secret {
  label: string;
  value: Buffer | string;
}

export interface Hit {
  label: string;
  form: string;
  where: string;
  /** A short excerpt around the hit (the needle itself replaced by «…»). */
  excerpt: string;
}

/** Base64 chars that depend only on `secret`'s bytes when it starts `offset` bytes into a blob. */
function alignedBase64(secret: Buffer, offset: number, url: boolean): string {
  const blob = Buffer.concat([Buffer.alloc(offset), secret]);
  const text = url ? blob.toString('base64url') : blob.toString('base64');
  const from = 4 * Math.ceil(offset / 3);
  const to = 4 * Math.floor((offset + secret.length) / 3);
  return text.slice(from, to);
}

/** Every searchable form of a secret, with its name. Forms shorter than 12 characters are skipped. */
export function formsOf(value: Buffer | string): Array<{ form: string; needle: string }> {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  const out: Array<{ form: string; needle: string }> = [];
  if (typeof value === 'string') {
    out.push({ form: 'text', needle: value });
    out.push({ form: 'json', needle: JSON.stringify(value).slice(1, -1) });
  } else {
    out.push({ form: 'raw-latin1', needle: bytes.toString('latin1') });
    out.push({ form: 'raw-utf8', needle: bytes.toString('utf8') });
  }
  out.push({ form: 'hex', needle: bytes.toString('hex') });
  out.push({ form: 'HEX', needle: bytes.toString('hex').toUpperCase() });
  for (let offset = 0; offset < 3; offset += 1) {
    out.push({ form: `base64@${offset}`, needle: alignedBase64(bytes, offset, false) });
    out.push({ form: `base64url@${offset}`, needle: alignedBase64(bytes, offset, true) });
  }
  const seen = new Set<string>();
  return out.filter(({ needle }) => {
    if (needle.length < 12 || seen.has(needle)) return false;
    seen.add(needle);
    return true;
  });
}

/**
 * Encoded forms are also searched piecewise: every window of WINDOW characters (hex: HEX_WINDOW)
 * of them, so a truncated or re-sliced secret (a log line cut at N characters, a substring of a
 * base64 blob at any character offset) is found too. 16 base64 characters or 24 hex characters
 * are 96 bits: no false positives.
 */
const WINDOW = 16;
const HEX_WINDOW = 24;

export class SecretScanner {
  private readonly secrets: Secret[] = [];

  add(label: string, value: Buffer | string | undefined): void {
    if (value === undefined) return;
    if (typeof value === 'string' && value.length < 12) {
      throw new Error(`secret ${label} is too short to scan for without false positives`);
    }
    if (Buffer.isBuffer(value) && value.length < 9) {
      throw new Error(`secret ${label} is too short to scan for without false positives`);
    }
    this.secrets.push({ label, value: Buffer.isBuffer(value) ? Buffer.from(value) : value });
  }

  get size(): number {
    return this.secrets.length;
  }

  labels(): string[] {
    return this.secrets.map((s) => s.label);
  }

  /** Every hit of every secret in `texts` (name → text); at most one per secret, form and text. */
  scan(texts: Record<string, string>): Hit[] {
    const hits: Hit[] = [];
    const seen = new Set<string>();
    const hit = (label: string, form: string, where: string, hay: string, i: number, n: number): void => {
      const id = `${label}|${form}|${where}`;
      if (seen.has(id)) return;
      seen.add(id);
      hits.push({
        label,
        form,
        where,
        excerpt: `${hay.slice(Math.max(0, i - 60), i)}«…»${hay.slice(i + n, i + n + 60)}`,
      });
    };
    // Windows of encoded forms → (label, form), for one pass over each text per window size.
    const windows = new Map<number, Map<string, { label: string; form: string }>>();
    const addWindows = (size: number, needle: string, label: string, form: string): void => {
      let m = windows.get(size);
      if (!m) windows.set(size, (m = new Map()));
      for (let i = 0; i + size <= needle.length; i += 1) m.set(needle.slice(i, i + size), { label, form });
    };
    const whole: Array<{ label: string; form: string; needle: string }> = [];
    for (const secret of this.secrets) {
      for (const { form, needle } of formsOf(secret.value)) {
        if (form.startsWith('hex') || form.startsWith('HEX'))
          addWindows(HEX_WINDOW, needle, secret.label, form);
        else if (form.startsWith('base64')) addWindows(WINDOW, needle, secret.label, form);
        else {
          whole.push({ label: secret.label, form, needle });
          // Printable text (credentials, tokens, "vault:v1:..." ciphertexts): truncated copies too.
          if (form === 'text' || (form === 'raw-latin1' && /^[\x20-\x7e]+$/.test(needle))) {
            addWindows(WINDOW, needle, secret.label, form);
          }
        }
      }
    }
    for (const [where, text] of Object.entries(texts)) {
      const latin1 = Buffer.from(text, 'utf8').toString('latin1');
      for (const w of whole) {
        for (const hay of [text, latin1]) {
          const i = hay.indexOf(w.needle);
          if (i >= 0) hit(w.label, w.form, where, hay, i, w.needle.length);
        }
      }
      for (const [size, m] of windows) {
        for (let i = 0; i + size <= text.length; i += 1) {
          const found = m.get(text.slice(i, i + size));
          if (found) hit(found.label, `${found.form} (${size}-char window)`, where, text, i, size);
        }
      }
    }
    return hits;
  }
}
