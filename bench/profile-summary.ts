/**
 * Summarises a V8 CPU profile (`node --cpu-prof`) of the plugin: self time grouped by where it is
 * spent (GC, Node's HTTP/2, grpc-js, crypto, logging, metrics, our code...), as a share of the
 * non-idle time, plus the top functions by self time.
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof dist/cli/main.js serve --provider local ... &
 *   kmsv2probe load --socket S --op decrypt --concurrency 16 --duration 6s; kill -TERM %1
 *   npx tsx bench/profile-summary.ts /tmp/prof/CPU.*.cpuprofile [--top 25]
 */
import { readFileSync } from 'node:fs';
import { Args } from './lib/args.js';
import { say, table } from './lib/report.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** First matching rule names the group. Order matters: specific before general. */
const GROUPS: Array<[string, (fn: string, url: string) => boolean]> = [
  ['(idle)', (fn) => fn === '(idle)'],
  ['garbage collector', (fn) => fn === '(garbage collector)'],
  ['(program), V8 internals', (fn, url) => fn === '(program)' || (fn === '(root)' && !url)],
  ['our gRPC codec (src/server/codec)', (_f, url) => /\/server\/codec\.[jt]s/.test(url)],
  ['protobufjs / proto-loader codec', (_f, url) => /protobufjs|proto-loader/.test(url)],
  ['@grpc/grpc-js', (_f, url) => url.includes('@grpc/grpc-js')],
  ['pino (logging)', (_f, url) => /pino|sonic-boom|fast-redact|quick-format/.test(url)],
  ['our access log line', (_f, url) => /observability\/(logger|access)/.test(url)],
  ['prom-client (metrics)', (_f, url) => url.includes('prom-client')],
  ['our metrics', (_f, url) => /observability\/metrics/.test(url)],
  [
    'AES-GCM and hashing (node:crypto)',
    (fn, url) => /internal\/crypto/.test(url) || /Cipher|Hash|Hmac/.test(fn),
  ],
  ['Node HTTP/2', (_f, url) => /internal\/http2/.test(url)],
  [
    'net, streams, buffers, events, timers',
    (_f, url) =>
      /node:(internal\/)?(stream|streams|buffer|events|timers|net|util|async_hooks|process|internal\/util)/.test(
        url,
      ),
  ],
  ['our server (src/server)', (_f, url) => /\/server\/[a-z-]+\.[jt]s/.test(url)],
  ['our envelope (src/envelope)', (_f, url) => /\/envelope\//.test(url)],
  ['our other code (src/*)', (_f, url) => /\/(dist|src)\//.test(url)],
  ['other Node internals', (_f, url) => url.startsWith('node:')],
  ['native / builtins (no url)', (_f, url) => url === ''],
];

function groupOf(fn: string, url: string): string {
  for (const [name, test] of GROUPS) if (test(fn, url)) return name;
  return 'other';
}

function main(): void {
  const args = new Args();
  const file = process.argv.slice(2).find((a) => !a.startsWith('--') && a.endsWith('.cpuprofile'));
  if (args.help || !file) {
    say('usage: tsx bench/profile-summary.ts FILE.cpuprofile [--top 25]');
    process.exit(file ? 0 : 2);
  }
  const top = args.number('top', 25);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const groups = new Map<string, number>();
  const fns = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const g = groupOf(functionName, url);
    if (g === '(idle)') {
      idle += us;
      continue;
    }
    total += us;
    groups.set(g, (groups.get(g) ?? 0) + us);
    const short = url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(dist|src)\//, '$1/');
    const key = `${functionName || '(anonymous)'} ${short}${short ? `:${lineNumber + 1}` : ''}`;
    fns.set(key, (fns.get(key) ?? 0) + us);
  }
  const pct = (us: number): string => `${((100 * us) / total).toFixed(1)}%`;
  say(`# ${file}: ${(total / 1e6).toFixed(2)} s busy, ${(idle / 1e6).toFixed(2)} s idle`);
  say();
  say(
    table(
      ['where (self time)', 'share of busy'],
      [...groups].sort((a, b) => b[1] - a[1]).map(([g, us]) => [g, pct(us)]),
    ),
  );
  say();
  say(
    table(
      ['top functions (self time)', 'share of busy'],
      [...fns]
        .sort((a, b) => b[1] - a[1])
        .slice(0, top)
        .map(([f, us]) => [f, pct(us)]),
    ),
  );
}

main();
