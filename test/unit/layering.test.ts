/**
 * The layering of docs/design.md §2, checked on the real import statements of every src/**\/*.ts:
 *
 *   cli → app → health → envelope → {server, kek} → {config, observability} → {errors, deadline}
 *
 * An import may only point down a floor (or stay inside its own folder). Type-only imports and
 * lazy `import()` count too: they are edges a reader has to follow. A new top-level folder fails
 * until it is given a floor here and in design.md.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import ts from 'typescript';

const SRC = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');

/** design.md §2: a higher floor may import a lower one; the same floor only itself. */
const FLOORS: Record<string, number> = {
  cli: 7,
  app: 6,
  health: 5,
  envelope: 4,
  server: 3,
  kek: 3,
  config: 2,
  observability: 2,
  errors: 1,
  deadline: 1,
};

/**
 * Import cycles between files that predate this test, each inside one folder. The list may only
 * shrink: a new cycle fails, and so does an entry that no longer is a cycle (delete it).
 */
const KNOWN_FILE_CYCLES: string[][] = [
  ['cli/render/options.ts', 'cli/render/paths.ts', 'cli/render/sidecar.ts', 'cli/render/static-pod.ts'],
  ['server/codec.ts', 'server/proto.ts'],
];

interface Edge {
  from: string;
  to: string;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** Relative imports of every file under `root` (static, type-only, re-exports and `import()`). */
function importEdges(root: string): Edge[] {
  const edges: Edge[] = [];
  for (const file of sourceFiles(root)) {
    const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    for (const { fileName } of info.importedFiles) {
      if (!fileName.startsWith('.')) continue;
      const target = normalize(join(dirname(file), fileName)).replace(/\.js$/, '.ts');
      edges.push({ from: rel(root, file), to: rel(root, target) });
    }
  }
  return edges;
}

function rel(root: string, file: string): string {
  return relative(root, file).split(sep).join('/');
}

/** `health/http.ts` → `health`; `errors.ts` → `errors`. */
function unitOf(file: string): string {
  const first = file.split('/')[0];
  return first.endsWith('.ts') ? first.slice(0, -3) : first;
}

/** Imports that point sideways or up a floor, or into a folder without a floor. */
export function layeringViolations(edges: readonly Edge[], floors: Record<string, number>): string[] {
  const out: string[] = [];
  for (const { from, to } of edges) {
    const a = unitOf(from);
    const b = unitOf(to);
    if (floors[a] === undefined) out.push(`${from}: folder "${a}" has no floor (add it to design.md §2)`);
    else if (floors[b] === undefined)
      out.push(`${from} → ${to}: "${b}" has no floor (add it to design.md §2)`);
    else if (a !== b && floors[b] >= floors[a]) {
      out.push(`${from} → ${to}: ${a} (floor ${floors[a]}) must not import ${b} (floor ${floors[b]})`);
    }
  }
  return [...new Set(out)].sort();
}

/** Strongly connected components with more than one node (Tarjan), each sorted. */
export function cycles(edges: readonly Edge[]): string[][] {
  const graph = new Map<string, Set<string>>();
  for (const { from, to } of edges) {
    if (from === to) continue;
    if (!graph.has(from)) graph.set(from, new Set());
    if (!graph.has(to)) graph.set(to, new Set());
    graph.get(from)!.add(to);
  }
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)!) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) found.push(comp.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return found.sort((x, y) => x[0].localeCompare(y[0]));
}

const unitEdges = (edges: readonly Edge[]): Edge[] =>
  edges.map(({ from, to }) => ({ from: unitOf(from), to: unitOf(to) }));

describe('the checker itself', () => {
  it('flags an import up a floor, sideways on one floor, and into a folder without a floor', () => {
    const edges: Edge[] = [
      { from: 'health/watcher.ts', to: 'kek/types.ts' },
      { from: 'config/providers/aws.ts', to: 'kek/aws/identifiers.ts' },
      { from: 'kek/registry.ts', to: 'server/errors.ts' },
      { from: 'kek/remote.ts', to: 'plugins/x.ts' },
      { from: 'kek/aws/index.ts', to: 'kek/types.ts' },
      { from: 'server/server.ts', to: 'deadline.ts' },
    ];
    expect(layeringViolations(edges, FLOORS)).toEqual([
      'config/providers/aws.ts → kek/aws/identifiers.ts: config (floor 2) must not import kek (floor 3)',
      'kek/registry.ts → server/errors.ts: kek (floor 3) must not import server (floor 3)',
      'kek/remote.ts → plugins/x.ts: "plugins" has no floor (add it to design.md §2)',
    ]);
  });

  it('finds a type-only circle like the one health/http.ts and http-format.ts had', () => {
    const edges: Edge[] = [
      { from: 'health/http.ts', to: 'health/http-format.ts' },
      { from: 'health/http-format.ts', to: 'health/http.ts' },
      { from: 'health/view.ts', to: 'health/http.ts' },
    ];
    expect(cycles(edges)).toEqual([['health/http-format.ts', 'health/http.ts']]);
    expect(cycles(edges.slice(1))).toEqual([]);
  });
});

describe('src/ layering (design.md §2)', () => {
  const edges = importEdges(SRC);

  it('reads the imports of every source file', () => {
    // A parser that found nothing would make the checks below pass vacuously.
    expect(sourceFiles(SRC).length).toBeGreaterThan(50);
    expect(edges.length).toBeGreaterThan(200);
    expect(edges).toContainEqual({ from: 'app/plugin.ts', to: 'health/http.ts' });
  });

  it('imports only point down a floor', () => {
    expect(layeringViolations(edges, FLOORS)).toEqual([]);
  });

  it('has no import cycle between top-level folders', () => {
    expect(cycles(unitEdges(edges))).toEqual([]);
  });

  it('has no import cycle between files beyond the known ones, each inside one folder', () => {
    expect(cycles(edges)).toEqual(KNOWN_FILE_CYCLES);
  });

  it('config never imports kek (identifiers live under config)', () => {
    expect(edges.filter((e) => e.from.startsWith('config/') && e.to.startsWith('kek/'))).toEqual([]);
  });
});
