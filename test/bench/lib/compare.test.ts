/** bench/lib/compare.ts: bench:compare's cells, the grpc-js floor's figures and the targets. */
import { describe, expect, it } from '@jest/globals';
// In the order of the tests below.
import {
  summarizeCell,
  rotate,
  floorFigures,
  floorRow,
  FLOOR_HEADERS,
  floorReading,
  floorMeasured,
  TARGET,
  targetChecks,
  targetsTable,
  cpuVsStatus,
} from '../../../bench/lib/compare.js';
import type { Cell, Result } from '../../../bench/lib/compare.js';

const cell = (o: Partial<Cell>): Cell => ({
  ops_per_s: 1000,
  p50_us: 500,
  p99_us: 2000,
  errors: 0,
  cpu_us_per_op: 50,
  rss_kb: 50_000,
  other_cpu_cores: 0,
  ...o,
});

/** A workload's result as compare.ts builds it, with the floor when given. */
function result(op: string, c: number, ours: Cell, go: Cell, floor?: Cell): Result {
  return {
    op,
    c,
    ours,
    go,
    ratio: ours.ops_per_s / go.ops_per_s,
    p99_ratio: ours.p99_us / go.p99_us,
    ...(floor && floorFigures(ours, go, floor)),
  };
}

describe('summarizeCell', () => {
  it('takes the medians of the repeats, sums the errors and keeps the largest RSS', () => {
    const kv = (ops: number, p99: number, cpu: number, rss: number, errors: number) => ({
      ops_per_s: ops,
      p50_us: p99 / 4,
      p99_us: p99,
      errors,
      plugin_cpu_us_per_op: cpu,
      plugin_rss_kb: rss,
      other_cpu_cores: 0.5,
    });
    const c = summarizeCell([
      kv(100, 900, 30, 70_000, 1),
      kv(300, 3000, 10, 90_000, 2),
      kv(200, 1000, 20, 80_000, 0),
    ]);
    expect(c).toEqual({
      ops_per_s: 200,
      p50_us: 250,
      p99_us: 1000,
      errors: 3,
      cpu_us_per_op: 20,
      rss_kb: 90_000,
      other_cpu_cores: 0.5,
    });
  });
});

describe('rotate', () => {
  it('moves who goes first along by one, every plugin first once in a cycle', () => {
    const p = ['ours', 'go', 'floor'];
    expect(rotate(p, 0)).toEqual(['ours', 'go', 'floor']);
    expect(rotate(p, 1)).toEqual(['go', 'floor', 'ours']);
    expect(rotate(p, 2)).toEqual(['floor', 'ours', 'go']);
    expect(rotate(p, 3)).toEqual(['ours', 'go', 'floor']);
    expect(rotate(p, 7)).toEqual(['go', 'floor', 'ours']);
    expect(p).toEqual(['ours', 'go', 'floor']);
  });

  it('with two plugins (--floor 0) alternates as before: ours first on even cells', () => {
    expect(rotate(['ours', 'go'], 0)).toEqual(['ours', 'go']);
    expect(rotate(['ours', 'go'], 1)).toEqual(['go', 'ours']);
    expect(rotate(['ours', 'go'], 4)).toEqual(['ours', 'go']);
    expect(rotate([], 3)).toEqual([]);
  });
});

describe('floorFigures and floorRow', () => {
  const ours = cell({ ops_per_s: 6000, p99_us: 6000, cpu_us_per_op: 80.5 });
  const go = cell({ ops_per_s: 20_000, p99_us: 2000, cpu_us_per_op: 25 });
  const floor = cell({ ops_per_s: 12_000, p99_us: 5000, cpu_us_per_op: 40.2, rss_kb: 73_242, errors: 2 });

  it('gives the floor against Go and ours against the floor', () => {
    const f = floorFigures(ours, go, floor);
    expect(f.floor).toBe(floor);
    expect(f.floor_ratio).toBeCloseTo(0.6);
    expect(f.floor_p99_ratio).toBeCloseTo(2.5);
    expect(f.ours_vs_floor).toBeCloseTo(0.5);
    expect(f.ours_minus_floor_cpu_us).toBe(40.3);
  });

  it('prints one cell per floor header, the CPU difference signed', () => {
    const row = floorRow('decrypt c=16', floorFigures(ours, go, floor));
    expect(row).toHaveLength(FLOOR_HEADERS.length);
    const byHeader = Object.fromEntries(FLOOR_HEADERS.map((h, i) => [h, row[i]]));
    expect(byHeader).toEqual({
      workload: 'decrypt c=16',
      'floor ops/s': '12000',
      'floor/Go': '0.60×',
      'floor p99': '5.00 ms',
      'floor p99/Go': '2.50×',
      'floor CPU/op': '40.2 µs',
      'floor RSS': '75 MB',
      'ours/floor ops/s': '0.50×',
      'ours − floor CPU/op': '+40.3 µs',
      'floor errors': '2',
    });
    const cheaper = floorRow('status c=16', floorFigures(cell({ cpu_us_per_op: 30 }), go, floor));
    expect(cheaper[FLOOR_HEADERS.indexOf('ours − floor CPU/op')]).toBe('−10.2 µs');
  });
});

describe('floorReading and floorMeasured', () => {
  it('says whose gap it is', () => {
    expect(floorReading(false, false)).toBe("the floor misses it too: grpc-js's ceiling here");
    expect(floorReading(false, true)).toBe('the floor meets it: the gap is ours');
    expect(floorReading(true, true)).toBe('both meet it');
    expect(floorReading(true, false)).toBe('ours meets it, the floor not');
    expect(floorReading(undefined, true)).toBe('');
    expect(floorReading(false, undefined)).toBe('');
  });

  it('shows the floor figure and whether it meets the target', () => {
    expect(floorMeasured('2.70×', false)).toBe('2.70× (not met)');
    expect(floorMeasured('0.60×', true)).toBe('0.60× (met)');
    expect(floorMeasured(undefined, undefined)).toBe('-');
  });
});

describe('targetChecks', () => {
  const go = (o: Partial<Cell> = {}) => cell({ ops_per_s: 20_000, p99_us: 2000, cpu_us_per_op: 25, ...o });
  const withFloor: Result[] = [
    result(
      'decrypt',
      16,
      cell({ ops_per_s: 7000, p99_us: 7600, cpu_us_per_op: 100, rss_kb: 90_000 }),
      go(),
      cell({ ops_per_s: 12_000, p99_us: 5400, cpu_us_per_op: 60, rss_kb: 130_000 }),
    ),
    result(
      'encrypt',
      16,
      cell({ ops_per_s: 10_400, p99_us: 3800, cpu_us_per_op: 90 }),
      go(),
      cell({ ops_per_s: 12_000, p99_us: 3000, cpu_us_per_op: 55 }),
    ),
    result('status', 16, cell({ cpu_us_per_op: 80 }), go(), cell({ cpu_us_per_op: 50, rss_kb: 120_000 })),
  ];

  it('checks every target for ours and, under saturation, for the floor', () => {
    const checks = targetChecks(withFloor, [16], 70_000);
    const by = Object.fromEntries(checks.map((k) => [k.target, k]));
    expect(Object.keys(by)).toEqual([
      `decrypt c=16 ops/s ≥ ${TARGET.ratio}× Go`,
      `decrypt c=16 p99 ≤ ${TARGET.p99}× Go`,
      `encrypt c=16 ops/s ≥ ${TARGET.ratio}× Go`,
      `encrypt c=16 p99 ≤ ${TARGET.p99}× Go`,
      'Decrypt CPU/op within 15% of Status (c=16)',
      `RSS under saturation ≤ ${TARGET.rssLoadMB} MB`,
      `RSS at the real cadence ≤ ${TARGET.rssCadenceMB} MB`,
    ]);
    expect(by['decrypt c=16 ops/s ≥ 0.5× Go']).toEqual({
      target: 'decrypt c=16 ops/s ≥ 0.5× Go',
      measured: '0.35×',
      met: false,
      floor_measured: '0.60×',
      floor_met: true,
    });
    expect(by['decrypt c=16 p99 ≤ 2× Go']).toMatchObject({
      measured: '3.80×',
      met: false,
      floor_measured: '2.70×',
      floor_met: false,
    });
    expect(by['encrypt c=16 ops/s ≥ 0.5× Go']).toMatchObject({
      measured: '0.52×',
      met: true,
      floor_met: true,
    });
    expect(by['encrypt c=16 p99 ≤ 2× Go']).toMatchObject({ measured: '1.90×', met: true, floor_met: true });
    expect(by['Decrypt CPU/op within 15% of Status (c=16)']).toEqual({
      target: 'Decrypt CPU/op within 15% of Status (c=16)',
      measured: '100 vs 80 µs = 1.25×',
      met: false,
      floor_measured: '60 vs 50 µs = 1.20×',
      floor_met: false,
    });
    // The largest RSS over the workloads: 130,000 KiB for the floor (over the cap), 90,000 for ours.
    expect(by['RSS under saturation ≤ 128 MB']).toEqual({
      target: 'RSS under saturation ≤ 128 MB',
      measured: '92.2 MB',
      met: true,
      floor_measured: '133.1 MB',
      floor_met: false,
    });
    // No floor at the real cadence.
    expect(by['RSS at the real cadence ≤ 80 MB']).toEqual({
      target: 'RSS at the real cadence ≤ 80 MB',
      measured: 'peak 71.7 MB',
      met: true,
    });
  });

  it('without the floor keeps the fields it always had and adds none', () => {
    const noFloor = withFloor.map(({ op, c, ours, go, ratio, p99_ratio }) => ({
      op,
      c,
      ours,
      go,
      ratio,
      p99_ratio,
    }));
    const checks = targetChecks(noFloor, [1, 16]);
    for (const k of checks) expect(Object.keys(k).sort()).toEqual(['measured', 'met', 'target']);
    expect(checks.find((k) => k.target.endsWith('(c=1)'))).toEqual({
      target: 'Decrypt CPU/op within 15% of Status (c=1)',
      measured: 'not run',
      met: undefined,
    });
    expect(checks.at(-1)).toMatchObject({ measured: 'not run', met: undefined });
  });

  it('with no saturation run (--repeats 0) has nothing to say for ours or the floor', () => {
    const checks = targetChecks([], [16], 60_000);
    expect(checks.filter((k) => k.measured === 'not run')).toHaveLength(checks.length - 1);
    expect(checks.some((k) => 'floor_measured' in k)).toBe(false);
  });
});

describe('targetsTable', () => {
  const checks = [
    {
      target: 'decrypt c=16 p99 ≤ 2× Go',
      measured: '3.80×',
      met: false,
      floor_measured: '2.70×',
      floor_met: false,
    },
    { target: 'RSS at the real cadence ≤ 80 MB', measured: 'not run', met: undefined },
  ];

  it('with the floor: its figure and the reading next to ours', () => {
    const lines = targetsTable(checks, true).split('\n');
    expect(lines[0]).toMatch(/^\| target +\| +measured \| met\? \| +grpc-js floor \| +reading \|$/);
    expect(lines[2]).toMatch(
      /^\| decrypt c=16 p99 ≤ 2× Go +\| +3\.80× \| +NO \| +2\.70× \(not met\) \| the floor misses it too: grpc-js's ceiling here \|$/,
    );
    expect(lines[3].split('|').map((x) => x.trim())).toEqual([
      '',
      'RSS at the real cadence ≤ 80 MB',
      'not run',
      '-',
      '-',
      '',
      '',
    ]);
  });

  it('without the floor (--floor 0): the three columns of before', () => {
    const lines = targetsTable(checks, false).split('\n');
    expect(lines[0]).toMatch(/^\| target +\| +measured \| met\? \|$/);
    expect(lines[2]).toMatch(/^\| decrypt c=16 p99 ≤ 2× Go +\| +3\.80× \| +NO \|$/);
  });
});

describe('cpuVsStatus', () => {
  it('prints both CPU figures and their ratio', () => {
    expect(cpuVsStatus(cell({ cpu_us_per_op: 36.5 }), cell({ cpu_us_per_op: 32.4 }))).toEqual({
      text: '36.5 vs 32.4 µs = 1.13×',
      ratio: 36.5 / 32.4,
    });
  });
});
