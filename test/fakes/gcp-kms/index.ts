/**
 * Local Cloud KMS for tests: the gRPC fake, a fake metadata server for ADC, a throwaway TLS
 * certificate, and a harness that points the real gcp provider at the fake.
 */
export { FakeGcpKms } from './server.js';
export type {
  CryptoKeyVersionView,
  FakeGcpKmsOptions,
  FaultKind,
  FaultSpec,
  KmsMethod,
  ProtectionLevel,
  RecordedCall,
  VersionState,
} from './server.js';
export { FakeMetadataServer } from './metadata-server.js';
export { selfSignedCert, type TestCert } from './tls.js';
export { TEST_KEY, fakeConfig, providerFor, startFakeWithKey, type ProviderHandle } from './harness.js';
