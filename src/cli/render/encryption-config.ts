/**
 * The kube-apiserver EncryptionConfiguration that points at this plugin. KMS v2 needs
 * `apiVersion: v2` (it defaults to v1), must not set `cachesize` (rejected for v2), and the
 * endpoint must be exactly the plugin's `listen`. `identity: {}` comes last so data written
 * before encryption was enabled stays readable until it is rewritten.
 */
import { goDuration, type RenderOptions } from './options.js';

export interface KmsProvider {
  apiVersion: 'v2';
  name: string;
  endpoint: string;
  timeout: string;
}

export interface EncryptionConfiguration {
  apiVersion: 'apiserver.config.k8s.io/v1';
  kind: 'EncryptionConfiguration';
  resources: Array<{
    resources: string[];
    providers: Array<{ kms: KmsProvider } | { identity: Record<string, never> }>;
  }>;
}

export function encryptionConfig(o: RenderOptions): EncryptionConfiguration {
  return {
    apiVersion: 'apiserver.config.k8s.io/v1',
    kind: 'EncryptionConfiguration',
    resources: [
      {
        resources: [...o.resources],
        providers: [
          {
            kms: {
              apiVersion: 'v2',
              name: o.name,
              endpoint: o.config.listen,
              timeout: goDuration(o.timeoutMs),
            },
          },
          { identity: {} },
        ],
      },
    ],
  };
}
