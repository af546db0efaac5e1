export {
  FakeAwsKms,
  type AwsFault,
  type FakeAwsKmsOptions,
  type LoggedRequest,
  type Json as FakeRequestBody,
} from './fake.js';
export {
  KeyStore,
  KmsError,
  canonicalContext,
  type FakeKey,
  type FakeKeyState,
  type FakeKeyMaterial,
} from './keys.js';
export { FakeContainerCredentials, FakeSts, type IssuedCredentials, type StsCall } from './credentials.js';
export { parseAuthorization, verifySignature } from './sigv4.js';
