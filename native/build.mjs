// Builds the native helpers (binding.gyp → build/Release/abstract_socket.node and aead.node).
//
// Runs npm's bundled node-gyp (no npm dependency needed).
// Node's own headers are used when they sit next to the running node (…/include/node/node_api.h,
// true for Debian's nodejs and the official node images), so nothing is downloaded; an explicit
// npm_config_nodedir (e.g. `nodedir=` in .npmrc) wins. Needs python3, make and a C compiler.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const args = ['rebuild', '--release'];
const bundledHeaders = dirname(dirname(process.execPath));
if (!process.env.npm_config_nodedir && existsSync(join(bundledHeaders, 'include', 'node', 'node_api.h'))) {
  args.push(`--nodedir=${bundledHeaders}`);
}

// Inside npm scripts npm names its node-gyp; run directly, use the one bundled with npm, else PATH.
const gypScript = [
  process.env.npm_config_node_gyp,
  join(bundledHeaders, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
].find((p) => p && existsSync(p));
const [cmd, cmdArgs] = gypScript ? [process.execPath, [gypScript, ...args]] : ['node-gyp', args];
const r = spawnSync(cmd, cmdArgs, { cwd: root, stdio: 'inherit' });
if (r.error || r.status !== 0) {
  console.error(
    `native build failed (${r.error ? r.error.message : `exit ${r.status}`}): ` +
      'building build/Release/abstract_socket.node and aead.node needs python3, make and a C compiler (g++/gcc)',
  );
  process.exit(1);
}
