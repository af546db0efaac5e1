/** Azure provider: azure.json and the credential it selects (src/kek/azure/credentials.ts). */
import { afterAll, describe, expect, it } from '@jest/globals';

import { azureSchema } from '../../../../src/config/providers/azure.js';
import { buildCredential, parseCloudConfig } from '../../../../src/kek/azure/credentials.js';

import { TempDir } from '../../../fakes/azure-keyvault/harness.js';

const dir = new TempDir();
afterAll(() => dir.remove());

describe('azure.json', () => {
  const cfg = (file: string) =>
    azureSchema.parse({ vaultUrl: 'https://kv1.vault.azure.net', keyName: 'kek', cloudConfigFile: file });

  it('parses the cloud-provider fields and rejects bad types without echoing values', () => {
    expect(
      parseCloudConfig('{"tenantId":"t","aadClientId":"c","useManagedIdentityExtension":"true"}', 'f'),
    ).toEqual({
      tenantId: 't',
      aadClientId: 'c',
      useManagedIdentityExtension: true,
    });
    expect(() => parseCloudConfig('{"aadClientSecret": 12345678}', 'f')).toThrow(
      /"aadClientSecret" must be a string/,
    );
    expect(() => parseCloudConfig('{"aadClientSecret": "sup3rs3cret"', 'f')).toThrow(/not valid JSON/);
    try {
      parseCloudConfig('{"aadClientSecret": "sup3rs3cret"', 'f');
    } catch (e) {
      expect((e as Error).message).not.toContain('sup3rs3cret');
    }
  });

  it('user-assigned managed identity', () => {
    const f = dir.file(
      'mi.json',
      JSON.stringify({
        cloud: 'AzureUSGovernmentCloud',
        useManagedIdentityExtension: true,
        userAssignedIdentityID: 'mi-client-id',
      }),
    );
    const b = buildCredential(cfg(f));
    expect(b.kind).toBe('managed-identity');
    expect(b.description).toBe('user-assigned managed identity mi-client-id');
    expect(b.authorityHost).toBe('https://login.microsoftonline.us');
  });

  it('system-assigned managed identity', () => {
    const f = dir.file('smi.json', JSON.stringify({ useManagedIdentityExtension: true }));
    expect(buildCredential(cfg(f)).description).toBe('system-assigned managed identity');
  });

  it('service principal: the secret is kept for scrubbing but not in the description', () => {
    const f = dir.file(
      'sp.json',
      JSON.stringify({
        cloud: 'AzureChinaCloud',
        tenantId: 't',
        aadClientId: 'app',
        aadClientSecret: 'very-secret-value',
      }),
    );
    const b = buildCredential(cfg(f));
    expect(b.kind).toBe('client-secret');
    expect(b.secrets).toEqual(['very-secret-value']);
    expect(b.description).not.toContain('very-secret-value');
    expect(b.authorityHost).toBe('https://login.chinacloudapi.cn');
  });

  it('explains what is wrong', () => {
    expect(() => buildCredential(cfg(dir.file('none.json', '{"tenantId":"t"}')))).toThrow(
      /names no identity/,
    );
    expect(() =>
      buildCredential(
        cfg(dir.file('pfx.json', '{"tenantId":"t","aadClientId":"a","aadClientCertPath":"/c.pfx"}')),
      ),
    ).toThrow(/unencrypted PEM/);
    expect(() =>
      buildCredential(cfg(dir.file('cloud.json', '{"cloud":"Mars","useManagedIdentityExtension":true}'))),
    ).toThrow(/unknown "cloud"/);
    expect(() => buildCredential(cfg('/nonexistent/azure.json'))).toThrow(
      /cannot read the cloud config \/nonexistent\/azure.json \(ENOENT\)/,
    );
  });
});
