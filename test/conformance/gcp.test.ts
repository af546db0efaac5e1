/**
 * The apiserver-emulation conformance suite against real plugin processes
 * (`node dist/cli/main.js serve --provider gcp`) whose KEK is a CryptoKey in the local Cloud KMS
 * fake (real @google-cloud/kms SDK inside the plugin).
 */
import { afterAll, beforeAll } from '@jest/globals';
import { FakeGcpKms } from '../fakes/gcp-kms/server.js';
import { tempDir } from '../support/plugin-process.js';
import { defineApiserverConformance, pluginStarter } from './suite.js';

const KEY = 'projects/conformance/locations/global/keyRings/k8s/cryptoKeys/etcd';
const OTHER_KEY = 'projects/conformance/locations/global/keyRings/k8s/cryptoKeys/other';

const dir = tempDir('kkp-conf-gcp-');
let fake: FakeGcpKms;

beforeAll(async () => {
  fake = await FakeGcpKms.start();
  fake.createKey(KEY);
  fake.createKey(OTHER_KEY);
});

afterAll(async () => {
  await fake?.close();
  dir.cleanup();
});

const start = pluginStarter('gcp', dir.path, {
  // No ADC discovery (the insecure mode needs none; this guards against a metadata-server probe).
  env: { METADATA_SERVER_DETECTION: 'none', GOOGLE_APPLICATION_CREDENTIALS: '' },
});

function startWith(keyName: string, statusVersion: 'v2' | 'v2beta1') {
  return start(
    ['--provider', 'gcp', '--gcp-key-name', keyName, '--gcp-endpoint', fake.endpoint, '--gcp-insecure'],
    statusVersion,
  );
}

defineApiserverConformance({
  name: 'gcp',
  start: ({ statusVersion }) => startWith(KEY, statusVersion),
  startOtherKek: () => startWith(OTHER_KEY, 'v2'),
  secrets: () => [...fake.keyMaterial(KEY), ...fake.keyMaterial(OTHER_KEY)],
  // The 1.27 (v2beta1, DEK-source type 0) profile exercises nothing provider-specific; the local
  // suite covers it. Leaving it out keeps this file near 30 s on 2 cores.
  profiles: ['p129'],
});
