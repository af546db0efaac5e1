export { FakeVault } from './server.js';
export type {
  Fault,
  FakeVaultOptions,
  FakeVaultTls,
  KeyLocation,
  LoginRoleOptions,
  SeenRequest,
  TokenOptions,
} from './server.js';
export { TransitError, TransitStore } from './transit.js';
export type { TransitKey } from './transit.js';
