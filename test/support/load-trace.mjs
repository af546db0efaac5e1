// Loaded with `node --import`: registers a resolve hook that prints every module URL the process
// loads to stderr as `LOADED <url>`. Used by test/deploy/startup-modules.test.ts.
import { register } from 'node:module';

register(
  'data:text/javascript,' +
    encodeURIComponent(`
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  process.stderr.write('LOADED ' + r.url + '\\n');
  return r;
}`),
);
