/**
 * `bench:compare`'s figures: the medians of a cell's repeats, the grpc-js floor against Go and
 * against ours, the floor table, and the issue-16 targets checked for ours and for the floor.
 * The floor (bench/grpc-floor.mjs) is a grpc-js server whose handlers do no work, run with our
 * plugin's Node settings: a gap the floor shares is grpc-js's on this machine, not ours.
 */
import type { KV } from './probe.js';
import { table } from './report.js';
import { fmtRatio, fmtUs, median, round } from './stats.js';

const MB = 1_000_000;
/** Issue 16's targets. */
export const TARGET = { ratio: 0.5, p99: 2, cpuVsStatus: 1.15, rssLoadMB: 128, rssCadenceMB: 80 };

/** One (plugin, op, concurrency) cell: medians of its repeats; errors summed; RSS the largest. */
export interface Cell {
  ops_per_s: number;
  p50_us: number;
  p99_us: number;
  errors: number;
  cpu_us_per_op: number;
  rss_kb: number;
  other_cpu_cores: number;
}

/** A cell from the `kmsv2probe load` result lines of its repeats. */
export function summarizeCell(kvs: KV[]): Cell {
  const n = (k: string): number[] => kvs.map((kv) => Number(kv[k]));
  return {
    ops_per_s: round(median(n('ops_per_s'))),
    p50_us: median(n('p50_us')),
    p99_us: median(n('p99_us')),
    errors: n('errors').reduce((a, b) => a + b, 0),
    cpu_us_per_op: round(median(n('plugin_cpu_us_per_op'))),
    rss_kb: Math.max(...n('plugin_rss_kb')),
    other_cpu_cores: round(median(n('other_cpu_cores')), 2),
  };
}

/** `items` starting at index k (mod length): who goes first moves along across cells and repeats. */
export function rotate<T>(items: readonly T[], k: number): T[] {
  if (items.length === 0) return [];
  const i = ((k % items.length) + items.length) % items.length;
  return [...items.slice(i), ...items.slice(0, i)];
}

/** The floor's figures for one workload (new fields of a `BENCH compare` result). */
export interface FloorFigures {
  floor: Cell;
  /** floor ops/s ÷ Go ops/s. */
  floor_ratio: number;
  /** floor p99 ÷ Go p99. */
  floor_p99_ratio: number;
  /** ours ops/s ÷ floor ops/s. */
  ours_vs_floor: number;
  /** ours CPU/op − floor CPU/op, µs: what our handlers add on top of grpc-js. */
  ours_minus_floor_cpu_us: number;
}

/** One workload of a `BENCH compare` line: ours and Go, and the floor's fields when it ran. */
export type Result = {
  op: string;
  c: number;
  ours: Cell;
  go: Cell;
  ratio: number;
  p99_ratio: number;
} & Partial<FloorFigures>;

export function floorFigures(ours: Cell, go: Cell, floor: Cell): FloorFigures {
  return {
    floor,
    floor_ratio: floor.ops_per_s / go.ops_per_s,
    floor_p99_ratio: floor.p99_us / go.p99_us,
    ours_vs_floor: ours.ops_per_s / floor.ops_per_s,
    ours_minus_floor_cpu_us: round(ours.cpu_us_per_op - floor.cpu_us_per_op),
  };
}

export const FLOOR_HEADERS = [
  'workload',
  'floor ops/s',
  'floor/Go',
  'floor p99',
  'floor p99/Go',
  'floor CPU/op',
  'floor RSS',
  'ours/floor ops/s',
  'ours − floor CPU/op',
  'floor errors',
];

const signedUs = (us: number): string =>
  Number.isFinite(us) ? `${us > 0 ? '+' : us < 0 ? '−' : '±'}${Math.abs(us)} µs` : '-';

/** One row of the floor table (FLOOR_HEADERS). */
export function floorRow(workload: string, f: FloorFigures): string[] {
  return [
    workload,
    f.floor.ops_per_s.toFixed(0),
    fmtRatio(f.floor_ratio),
    fmtUs(f.floor.p99_us),
    fmtRatio(f.floor_p99_ratio),
    `${f.floor.cpu_us_per_op} µs`,
    `${((f.floor.rss_kb * 1024) / MB).toFixed(0)} MB`,
    fmtRatio(f.ours_vs_floor),
    signedUs(f.ours_minus_floor_cpu_us),
    String(f.floor.errors),
  ];
}

/** What a target's result says once the floor's is known; '' without a floor figure. */
export function floorReading(ours: boolean | undefined, floor: boolean | undefined): string {
  if (ours === undefined || floor === undefined) return '';
  if (ours && floor) return 'both meet it';
  if (ours) return 'ours meets it, the floor not';
  if (floor) return 'the floor meets it: the gap is ours';
  return "the floor misses it too: grpc-js's ceiling here";
}

/** The floor's column of the targets table: its figure and whether it meets the target. */
export function floorMeasured(measured: string | undefined, met: boolean | undefined): string {
  if (measured === undefined) return '-';
  if (met === undefined) return measured;
  return `${measured} (${met ? 'met' : 'not met'})`;
}

/** `decrypt vs status µs = ratio`, for the "Decrypt CPU within 15% of Status" target. */
export function cpuVsStatus(decrypt: Cell, status: Cell): { text: string; ratio: number } {
  const ratio = decrypt.cpu_us_per_op / status.cpu_us_per_op;
  return { text: `${decrypt.cpu_us_per_op} vs ${status.cpu_us_per_op} µs = ${fmtRatio(ratio)}`, ratio };
}

/** One target: ours (`measured`, `met`: the fields docs quote) and the floor's, where it ran. */
export interface Check {
  target: string;
  measured: string;
  /** undefined: not run. */
  met: boolean | undefined;
  floor_measured?: string;
  floor_met?: boolean;
}

function floorCheck(figure: number | undefined, ok: (x: number) => boolean, text: string): Partial<Check> {
  return figure === undefined || !Number.isFinite(figure)
    ? {}
    : { floor_measured: text, floor_met: ok(figure) };
}

/**
 * The issue-16 targets from a run's results (saturation) and our plugin's RSS peak at the real
 * cadence (KiB; undefined when that phase did not run). The floor has no real-cadence figure.
 */
export function targetChecks(results: Result[], concs: number[], cadencePeakKb?: number): Check[] {
  const at16 = (op: string): Result | undefined => results.find((r) => r.op === op && r.c === 16);
  const checks: Check[] = [];
  for (const op of ['decrypt', 'encrypt']) {
    const r = at16(op);
    const atLeast = (x: number): boolean => x >= TARGET.ratio;
    const atMost = (x: number): boolean => x <= TARGET.p99;
    checks.push({
      target: `${op} c=16 ops/s ≥ ${TARGET.ratio}× Go`,
      measured: r ? fmtRatio(r.ratio) : 'not run',
      met: r && atLeast(r.ratio),
      ...floorCheck(r?.floor_ratio, atLeast, fmtRatio(r?.floor_ratio ?? Number.NaN)),
    });
    checks.push({
      target: `${op} c=16 p99 ≤ ${TARGET.p99}× Go`,
      measured: r ? fmtRatio(r.p99_ratio) : 'not run',
      met: r && atMost(r.p99_ratio),
      ...floorCheck(r?.floor_p99_ratio, atMost, fmtRatio(r?.floor_p99_ratio ?? Number.NaN)),
    });
  }
  for (const c of concs) {
    const d = results.find((r) => r.op === 'decrypt' && r.c === c);
    const s = results.find((r) => r.op === 'status' && r.c === c);
    const x = d && s ? cpuVsStatus(d.ours, s.ours) : undefined;
    const fx = d?.floor && s?.floor ? cpuVsStatus(d.floor, s.floor) : undefined;
    const within = (ratio: number): boolean => ratio <= TARGET.cpuVsStatus;
    checks.push({
      target: `Decrypt CPU/op within 15% of Status (c=${c})`,
      measured: x ? x.text : 'not run',
      met: x ? within(x.ratio) : undefined,
      ...floorCheck(fx?.ratio, within, fx?.text ?? ''),
    });
  }
  const maxRss = (kbs: Array<number | undefined>): number =>
    results.length ? Math.max(...kbs.map((kb) => kb ?? Number.NaN)) * 1024 : Number.NaN;
  const rssLoad = maxRss(results.map((r) => r.ours.rss_kb));
  const floorRssLoad = maxRss(results.map((r) => r.floor?.rss_kb));
  const underLoadCap = (bytes: number): boolean => bytes <= TARGET.rssLoadMB * MB;
  checks.push({
    target: `RSS under saturation ≤ ${TARGET.rssLoadMB} MB`,
    measured: results.length ? `${(rssLoad / MB).toFixed(1)} MB` : 'not run',
    met: results.length ? underLoadCap(rssLoad) : undefined,
    ...floorCheck(floorRssLoad, underLoadCap, `${(floorRssLoad / MB).toFixed(1)} MB`),
  });
  checks.push({
    target: `RSS at the real cadence ≤ ${TARGET.rssCadenceMB} MB`,
    measured: cadencePeakKb === undefined ? 'not run' : `peak ${((cadencePeakKb * 1024) / MB).toFixed(1)} MB`,
    met: cadencePeakKb === undefined ? undefined : cadencePeakKb * 1024 <= TARGET.rssCadenceMB * MB,
  });
  return checks;
}

const yes = (ok: boolean | undefined): string => (ok === undefined ? '-' : ok ? 'yes' : 'NO');

/** The targets table; with the floor, its figure per target and what the two together say. */
export function targetsTable(checks: Check[], withFloor: boolean): string {
  if (!withFloor)
    return table(
      ['target', 'measured', 'met?'],
      checks.map((k) => [k.target, k.measured, yes(k.met)]),
    );
  return table(
    ['target', 'measured', 'met?', 'grpc-js floor', 'reading'],
    checks.map((k) => [
      k.target,
      k.measured,
      yes(k.met),
      floorMeasured(k.floor_measured, k.floor_met),
      floorReading(k.met, k.floor_met),
    ]),
  );
}
