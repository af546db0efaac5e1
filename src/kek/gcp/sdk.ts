/**
 * KmsApi on top of the official @google-cloud/kms client.
 *
 * - Credentials: Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud ADC, the
 *   GKE/GCE metadata server) or an explicit service-account / workload-identity-federation file.
 *   The SDK holds them; nothing here reads or logs a token. A credentials file is followed through
 *   CredentialFile: when it changes and the new one is a valid credential, the next call goes
 *   through a new client built with it (the old client finishes its calls and is closed a minute
 *   later); a bad new file is logged and counted and the old credentials kept.
 * - No SDK retries: every call passes `retry: null` (google-gax then applies only the per-call
 *   `timeout` as the gRPC deadline: the attempt's time left, from its signal). RemoteCaller does
 *   the bounded, deadline-aware retries.
 *   (Never `maxRetries`: in google-gax 5 it poisons the client's shared retry settings.)
 * - Calls go through the client's `innerApiCalls`, the google-gax call functions the public methods
 *   wrap. Two reasons: their promise has `cancel()`, so an aborted signal really cancels the RPC;
 *   and the public wrappers log whole requests and responses (plaintext DEKs included) when
 *   GOOGLE_SDK_NODE_LOGGING is set, which must never happen here.
 */
import { stringify } from 'node:querystring';
import { KeyManagementServiceClient } from '@google-cloud/kms';
import * as grpc from '@grpc/grpc-js';
import { OAuth2Client } from 'google-auth-library';
import type { GcpConfig } from '../../config/providers/gcp.js';
import type { Logger } from '../../observability/logger.js';
import type { ProviderMetrics } from '../../observability/metrics.js';
import { CredentialFile, parseJsonObject } from '../credential-file.js';
import { InvalidInputError, readConfigFile } from '../errors.js';
import { attemptTimeLeftMs } from '../remote.js';
import type {
  CallOptions,
  CryptoKey,
  CryptoKeyVersion,
  DecryptRequest,
  DecryptResponse,
  EncryptRequest,
  EncryptResponse,
  KmsApi,
  VersionPage,
} from './api.js';

type ClientOptions = NonNullable<ConstructorParameters<typeof KeyManagementServiceClient>[0]>;

/** A google-gax "cancellable promise" of [response, next, raw]. */
type GaxPromise<T> = Promise<[T, unknown, unknown]> & { cancel?: () => void };
type GaxCall = (request: object, options: object) => GaxPromise<unknown>;

const DEFAULT_PORT = 443;

/** Splits host[:port] (IPv6 in brackets). */
export function splitEndpoint(endpoint: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d{1,5}))?$/.exec(endpoint);
  if (!m) throw new InvalidInputError(`gcp.endpoint: expected host[:port], got ${JSON.stringify(endpoint)}`);
  return { host: m[1].replace(/^\[|\]$/g, ''), port: m[2] ? Number(m[2]) : DEFAULT_PORT };
}

/** Builds the SDK client options from config (exported for tests). */
export function clientOptions(config: GcpConfig): ClientOptions {
  const options: ClientOptions = {};
  if (config.endpoint) {
    const { host, port } = splitEndpoint(config.endpoint);
    options.apiEndpoint = host;
    options.port = port;
  }
  if (config.insecure) {
    // Plaintext to a loopback fake. grpc-js refuses call credentials on an insecure channel, so
    // nothing would be sent anyway; a static auth client also stops ADC from probing the metadata
    // server (169.254.169.254) on the first call.
    options.sslCreds = grpc.credentials.createInsecure();
    const auth = new OAuth2Client();
    auth.setCredentials({
      access_token: 'insecure-test-mode',
      expiry_date: Date.now() + 10 * 365 * 86_400_000,
    });
    options.authClient = auth as unknown as ClientOptions['authClient'];
    return options;
  }
  if (config.credentialsFile) {
    readConfigFile(config.credentialsFile, 'gcp.credentialsFile');
    options.keyFilename = config.credentialsFile;
  }
  return options;
}

const CREDENTIAL_TYPES = new Set([
  'service_account',
  'external_account',
  'authorized_user',
  'impersonated_service_account',
  'external_account_authorized_user',
]);

/** A Google credentials JSON file (service account or workload identity federation). */
export function parseGoogleCredentials(data: Buffer): Record<string, unknown> {
  const doc = parseJsonObject(data);
  if (typeof doc.type !== 'string' || !CREDENTIAL_TYPES.has(doc.type))
    throw new Error(`"type" must be one of ${[...CREDENTIAL_TYPES].join(', ')}`);
  if (
    doc.type === 'service_account' &&
    (typeof doc.private_key !== 'string' || typeof doc.client_email !== 'string')
  )
    throw new Error('a service_account file needs private_key and client_email');
  if (doc.type === 'external_account' && typeof doc.audience !== 'string')
    throw new Error('an external_account file needs audience and credential_source');
  return doc;
}

/** How long a replaced client may finish its calls before it is closed. */
const RETIRE_AFTER_MS = 60_000;

export class SdkKmsApi implements KmsApi {
  private client: KeyManagementServiceClient;
  private calls: Record<string, GaxCall>;
  private readonly options: ClientOptions;
  private readonly credentials?: CredentialFile<Record<string, unknown>>;
  private credentialsVersion = 0;
  private readonly retired = new Set<KeyManagementServiceClient>();

  constructor(config: GcpConfig, reload?: { logger: Logger; metrics: ProviderMetrics }) {
    const options = clientOptions(config);
    if (reload && config.credentialsFile && !config.insecure) {
      this.credentials = new CredentialFile({
        path: config.credentialsFile,
        field: 'gcp.credentialsFile',
        provider: 'gcp',
        parse: parseGoogleCredentials,
        logger: reload.logger,
        metrics: reload.metrics,
      });
      try {
        options.credentials = this.credentials.get() as ClientOptions['credentials'];
        delete options.keyFilename;
        this.credentialsVersion = this.credentials.version;
      } catch (err) {
        throw new InvalidInputError((err as Error).message);
      }
    }
    this.options = options;
    if (config.caFile && !config.insecure) {
      const ca = readConfigFile(config.caFile, 'gcp.caFile');
      // With sslCreds set, google-gax attaches no credentials itself: compose the client's own
      // GoogleAuth (ADC or credentialsFile) as call credentials, as gax does for the default roots.
      options.sslCreds = grpc.credentials.combineChannelCredentials(
        grpc.credentials.createSsl(ca),
        grpc.credentials.createFromGoogleCredential({
          getRequestHeaders: async (url?: string) => {
            const authClient = await this.client.auth.getClient();
            const headers = await authClient.getRequestHeaders(url);
            const out: Record<string, string> = {};
            headers.forEach((value, key) => (out[key] = value));
            return out;
          },
        }),
      );
    }
    this.client = new KeyManagementServiceClient(options);
    this.calls = SdkKmsApi.callsOf(this.client);
  }

  private static callsOf(client: KeyManagementServiceClient): Record<string, GaxCall> {
    // initialize() creates the stub (lazily connecting) and the call functions.
    void client.initialize().catch(() => undefined);
    const calls = client.innerApiCalls as unknown as Record<string, GaxCall>;
    for (const m of ['getCryptoKey', 'listCryptoKeyVersions', 'encrypt', 'decrypt']) {
      if (typeof calls[m] !== 'function') {
        throw new InvalidInputError(
          `the installed @google-cloud/kms has no call function for ${m}; this plugin build needs @google-cloud/kms 5.x`,
        );
      }
    }
    return calls;
  }

  /** A changed, valid credentials file: later calls go through a client built with it. */
  private followCredentialsFile(): void {
    if (!this.credentials) return;
    let creds: Record<string, unknown>;
    try {
      creds = this.credentials.get();
    } catch {
      return; // unusable and the old one expired: the client still holds the old credentials
    }
    if (this.credentials.version === this.credentialsVersion) return;
    this.credentialsVersion = this.credentials.version;
    const old = this.client;
    this.client = new KeyManagementServiceClient({
      ...this.options,
      credentials: creds as ClientOptions['credentials'],
    });
    this.calls = SdkKmsApi.callsOf(this.client);
    this.retired.add(old);
    setTimeout(() => {
      if (this.retired.delete(old)) void old.close().catch(() => undefined);
    }, RETIRE_AFTER_MS).unref();
  }

  async getCryptoKey(name: string, options: CallOptions): Promise<CryptoKey> {
    return (await this.invoke('getCryptoKey', { name }, name, options))[0] as CryptoKey;
  }

  async listCryptoKeyVersions(
    request: { parent: string; filter?: string; pageSize?: number; pageToken?: string },
    options: CallOptions,
  ): Promise<VersionPage> {
    // One page per call (autoPaginate off): the provider pages itself, inside its deadline.
    const [versions, , raw] = await this.invoke('listCryptoKeyVersions', request, request.parent, options, {
      autoPaginate: false,
      key: 'parent',
    });
    return {
      versions: (versions ?? []) as CryptoKeyVersion[],
      nextPageToken: (raw as { nextPageToken?: string | null } | null)?.nextPageToken ?? null,
    };
  }

  async encrypt(request: EncryptRequest, options: CallOptions): Promise<EncryptResponse> {
    return (await this.invoke('encrypt', request, request.name ?? '', options))[0] as EncryptResponse;
  }

  async decrypt(request: DecryptRequest, options: CallOptions): Promise<DecryptResponse> {
    return (await this.invoke('decrypt', request, request.name ?? '', options))[0] as DecryptResponse;
  }

  async close(): Promise<void> {
    for (const c of this.retired) await c.close().catch(() => undefined);
    this.retired.clear();
    await this.client.close();
  }

  /** Resolves with google-gax's [response, nextRequest, rawResponse]. */
  private invoke(
    method: string,
    request: object,
    name: string,
    options: CallOptions,
    extra: { autoPaginate?: boolean; key?: string } = {},
  ): Promise<[unknown, unknown, unknown]> {
    const { signal } = options;
    if (signal.aborted) return Promise.reject(signal.reason);
    this.followCredentialsFile();
    // A fresh options object per call: google-gax mutates it.
    const callOptions = {
      timeout: attemptTimeLeftMs(signal),
      retry: null,
      ...(extra.autoPaginate === undefined ? {} : { autoPaginate: extra.autoPaginate }),
      otherArgs: { headers: { 'x-goog-request-params': stringify({ [extra.key ?? 'name']: name }) } },
    };
    const pending = this.calls[method](request, callOptions);
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        pending.cancel?.();
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      pending.then(
        (tuple) => {
          signal.removeEventListener('abort', onAbort);
          resolve(tuple);
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      );
    });
  }
}
