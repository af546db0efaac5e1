/**
 * `reencrypt`: rewrite every object of the configured resources through the Kubernetes API (never
 * by writing etcd) so kube-apiserver stores them under the current key (design §8.3). See
 * docs/reencrypt.md. The work is in ./reencrypt/; this file parses flags, prints and exits:
 * 0 done, 1 some objects failed (or the gate gave up), 2 bad flags, 3 --verify found objects still
 * under the old key, 130 stopped by Ctrl-C/SIGTERM (resumable with --checkpoint).
 */
import type { Command } from 'commander';
import { addEtcdFlags } from './etcd/connect.js';
import type { Flags } from './reencrypt/command.js';

export function registerReencrypt(program: Command): void {
  const cmd = program
    .command('reencrypt')
    .description(
      'rewrite every object of the configured resources through the Kubernetes API so they are stored under the ' +
        'current key: StorageVersionMigration where served, else no-op updates; gated on every plugin replica ' +
        'reporting the new key_id plus the apiserver write window; rate-limited, resumable, with progress',
    )
    .option('--kubeconfig <FILE>', 'kubeconfig (default: KUBECONFIG, ~/.kube/config, or in-cluster)')
    .option('--context <NAME>', 'kubeconfig context (default: the current one)')
    .option(
      '--encryption-config <FILE>',
      'rewrite every resource this EncryptionConfiguration lists (*.G, *.* expanded)',
    )
    .option('--resource <LIST>', 'resources to rewrite, e.g. secrets,configmaps,deployments.apps')
    .option('--method <M>', 'auto (StorageVersionMigration if served, else update), svm or update', 'auto')
    .option(
      '--wait-for-key-id <ID>',
      'before the first write, wait until every plugin replica reports this key_id',
    )
    .option(
      '--plugin-metrics <URLS>',
      "the replicas' metrics endpoints, comma separated (http://node:8080/metrics)",
    )
    .option('--socket <ENDPOINTS>', "the replicas' KMS sockets, comma separated (Status is called)")
    .option('--gate-timeout <DURATION>', 'give up waiting for the key_id after this long', '30m')
    .option('--gate-interval <DURATION>', 'how often replicas are polled', '5s')
    .option('--write-window <DURATION>', 'after the switch, wait this long before the first write', '3m')
    .option('--qps <N>', 'API requests per second (0: no limit)', '20')
    .option('--burst <N>', 'requests allowed at once above --qps (default: qps)')
    .option('--concurrency <N>', 'updates in flight at once (svm: migrations followed at once)', '4')
    .option('--page-size <N>', 'objects per list page', '500')
    .option('--retries <N>', 'retries of a request on 429/5xx/network errors', '8')
    .option('--checkpoint <FILE>', 'keep progress here; a rerun with the same file resumes')
    .option('--progress-every <N>', 'without a terminal: one JSON progress line per N objects', '1000')
    .option('--svm-timeout <DURATION>', 'svm: fail a migration that shows no condition for this long', '2m')
    .option('--json', 'print the summary as JSON')
    .option(
      '--verify',
      'afterwards, run the census over etcd (needs the etcd flags) and report objects still under the old key',
    )
    .option('--old-version <V>', 'with --verify: the old KEK version / key_id / key name to look for');
  addEtcdFlags(cmd).action(async (opts: Flags) => {
    const { reencryptCommand } = await import('./reencrypt/command.js');
    process.exitCode = await reencryptCommand(opts);
  });
}
