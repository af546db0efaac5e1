import { readFileSync } from 'node:fs';

export interface VersionInfo {
  name: string;
  version: string;
  node: string;
  kmsApi: string;
}

export function versionInfo(): VersionInfo {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    name: string;
    version: string;
  };
  return {
    name: pkg.name,
    version: pkg.version,
    node: process.version,
    kmsApi: 'v2 (Status version "v2" or "v2beta1")',
  };
}
