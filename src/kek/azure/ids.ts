/** Key identifiers: `<vaultUrl>/keys/<name>` resources and versioned kids. */

export interface ParsedKid {
  vaultUrl: string;
  name: string;
  version?: string;
}

/** Parses `https://host[:port]/keys/<name>[/<version>]` (as returned in a response `kid`). */
export function parseKid(kid: string): ParsedKid | undefined {
  let u: URL;
  try {
    u = new URL(kid);
  } catch {
    return undefined;
  }
  const m = /^\/keys\/([^/]+)(?:\/([^/]*))?\/?$/.exec(u.pathname);
  if (!m) return undefined;
  return { vaultUrl: `${u.protocol}//${u.host.toLowerCase()}`, name: m[1], version: m[2] || undefined };
}

/** The stable key resource used as KekRef.key. */
export function keyResource(vaultUrl: string, name: string): string {
  return `${vaultUrl}/keys/${name}`;
}

export function versionedKid(vaultUrl: string, name: string, version: string): string {
  return `${vaultUrl}/keys/${name}/${version}`;
}

/** Same vault and key (host compared case-insensitively, default port elided). */
export function sameKey(a: ParsedKid, vaultUrl: string, name: string): boolean {
  const strip = (u: string): string => u.toLowerCase().replace(/:443$/, '');
  return strip(a.vaultUrl) === strip(vaultUrl) && a.name.toLowerCase() === name.toLowerCase();
}
