/**
 * describe() for suites that need a real etcd: it FAILS under CI=true when no etcd binary is found
 * (.ci/run installs etcd-server), and skips, visibly, only outside CI.
 */
import { describe, it } from '@jest/globals';
import { etcdBinary } from './etcd.js';

const isCi = (): boolean => process.env.CI === 'true' || process.env.CI === '1';

/** describe() for suites that need etcd: fails in CI without it, skips locally. */
export function describeEtcd(name: string, fn: () => void): void {
  if (etcdBinary()) {
    describe(name, fn);
  } else if (isCi()) {
    describe(name, () => {
      it('needs etcd (apt-get install etcd-server; .ci/run does this)', () => {
        throw new Error('etcd is not installed but CI=true: install etcd-server (Debian) or set ETCD_BIN');
      });
    });
  } else {
    describe.skip(`${name} (etcd not installed; set ETCD_BIN or apt-get install etcd-server)`, fn);
  }
}
