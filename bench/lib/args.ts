/**
 * Tiny command-line parsing for the bench scripts: `--name value` and `--flag`, with durations
 * such as 500ms, 10s, 2m, 1h.
 */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new Error(`not a duration: ${text} (use e.g. 500ms, 10s, 2m)`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return Math.round(n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit as 'ms' | 's' | 'm' | 'h']);
}

export class Args {
  constructor(private readonly argv: string[] = process.argv.slice(2)) {
    if (argv.includes('--help') || argv.includes('-h')) this.help = true;
  }

  readonly help: boolean = false;

  string(name: string, fallback: string): string {
    const i = this.argv.indexOf(`--${name}`);
    if (i < 0) return fallback;
    const v = this.argv[i + 1];
    if (v === undefined) throw new Error(`--${name} needs a value`);
    return v;
  }

  number(name: string, fallback: number): number {
    const v = Number(this.string(name, String(fallback)));
    if (!Number.isFinite(v)) throw new Error(`--${name}: not a number`);
    return v;
  }

  durationMs(name: string, fallback: string): number {
    return parseDuration(this.string(name, fallback));
  }

  list(name: string, fallback: string): string[] {
    return this.string(name, fallback)
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  }

  flag(name: string): boolean {
    return this.argv.includes(`--${name}`);
  }
}
