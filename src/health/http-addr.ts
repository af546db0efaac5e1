/**
 * Parses the `--health-addr` value (`host:port`, `[v6]:port`) into what `server.listen` takes, and
 * tells whether a host is loopback-only (the default and the recommendation: the endpoints are
 * unauthenticated).
 */
import { isIP } from 'node:net';

export interface ListenAddr {
  host: string;
  port: number;
}

export function parseHostPort(addr: string): ListenAddr {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(addr);
  if (!m)
    throw new Error(
      `health address ${JSON.stringify(addr)}: expected host:port, e.g. 127.0.0.1:8086 or [::1]:8086`,
    );
  const host = m[1] ?? m[2];
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`health address ${JSON.stringify(addr)}: port must be 0..65535`);
  return { host, port };
}

/** Formats an address back into `host:port` (brackets for IPv6). */
export function formatHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || /^::ffff:127\./i.test(host);
  return false;
}
