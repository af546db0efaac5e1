/**
 * What the renderers derive from the plugin config: the socket (file or abstract), the health
 * port, and every file the plugin reads on the node (so manifests mount exactly those).
 */
import { posix } from 'node:path';
import type { Config } from '../../config/schema.js';
import { parseHostPort } from '../../health/http-addr.js';
import { RenderError } from './options.js';

export type SocketInfo = { kind: 'file'; path: string; dir: string } | { kind: 'abstract'; name: string };

export function socketOf(config: Config): SocketInfo {
  const path = config.listen.slice('unix://'.length);
  if (path.startsWith('/@')) return { kind: 'abstract', name: path.slice(2) };
  return { kind: 'file', path, dir: posix.dirname(path) };
}

export interface HealthEndpoint {
  /** Host the probes use (the listener is loopback by default, so probes must say so). */
  host: string | undefined;
  port: number;
}

export function healthOf(config: Config, what: string): HealthEndpoint {
  if (config.healthAddr === '') {
    throw new RenderError(
      '--health-addr',
      `${what} needs the health endpoints for its probes; set healthAddr (default 127.0.0.1:8086) instead of ""`,
    );
  }
  const { host, port } = parseHostPort(config.healthAddr);
  if (port === 0) throw new RenderError('--health-addr', `${what} needs a fixed health port, not 0`);
  const wildcard = host === '0.0.0.0' || host === '::';
  return { host: wildcard ? undefined : host, port };
}

export interface NodeFile {
  /** Config path of the setting, e.g. "local.keyFile". */
  field: string;
  path: string;
}

/**
 * Files the plugin reads, found by field name in the active provider sections (`keyFile`,
 * `caFile`, `tokenFile`, `credentialsFile`, ...), so new provider fields are mounted without
 * touching the renderers. Relative paths are refused: on the node they would be ambiguous.
 */
export function filesOf(config: Config): NodeFile[] {
  const out: NodeFile[] = [];
  const sections: Array<[string, unknown]> = [[config.provider, config[config.provider]]];
  config.decryptOnly.forEach((sel, i) =>
    sections.push([`decryptOnly[${i}].${sel.provider}`, sel[sel.provider]]),
  );
  for (const [prefix, section] of sections) collect(prefix, section, out);
  const seen = new Set<string>();
  return out.filter((f) => (seen.has(f.path) ? false : (seen.add(f.path), true)));
}

function collect(prefix: string, node: unknown, out: NodeFile[]): void {
  if (typeof node !== 'object' || node === null) return;
  for (const [k, v] of Object.entries(node)) {
    const field = `${prefix}.${k}`;
    if (typeof v === 'string' && /(File|Path)$/.test(k) && v !== '') {
      if (!v.startsWith('/'))
        throw new RenderError(
          field,
          `${JSON.stringify(v)} must be an absolute path to be mounted on the node`,
        );
      out.push({ field, path: posix.normalize(v) });
    } else if (typeof v === 'object') {
      collect(field, v, out);
    }
  }
}

/** A DNS-1123 label for volume names: "local.keyFile" → "local-keyfile". */
export function volumeName(field: string): string {
  return (
    field
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 63)
      .replace(/-+$/, '') || 'file'
  );
}
