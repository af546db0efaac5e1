/**
 * KmsApi on top of the official @google-cloud/kms client.
 *
 * - Credentials: Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud ADC, the
 *   GKE/GCE metadata server) or an explicit service-account / workload-identity-federation file.
 *   The SDK holds them; nothing here reads or logs a token.
 * - No SDK retries: every call passes `retry: null` (google-gax then applies only the per-call
 *   `timeout` as the gRPC deadline). RemoteCaller does the bounded, deadline-aware retries.
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
import { InvalidInputError } from '../errors.js';
import { readConfiguredFile } from './files.js';
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
    readConfiguredFile(config.credentialsFile, 'gcp.credentialsFile');
    options.keyFilename = config.credentialsFile;
  }
  return options;
}

export class SdkKmsApi implements KmsApi {
  private readonly client: KeyManagementServiceClient;
  private readonly calls: Record<string, GaxCall>;

  constructor(config: GcpConfig) {
    const options = clientOptions(config);
    if (config.caFile && !config.insecure) {
      const ca = readConfiguredFile(config.caFile, 'gcp.caFile');
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
    // initialize() creates the stub (lazily connecting) and the call functions.
    void this.client.initialize().catch(() => undefined);
    this.calls = this.client.innerApiCalls as unknown as Record<string, GaxCall>;
    for (const m of ['getCryptoKey', 'listCryptoKeyVersions', 'encrypt', 'decrypt']) {
      if (typeof this.calls[m] !== 'function') {
        throw new InvalidInputError(
          `the installed @google-cloud/kms has no call function for ${m}; this plugin build needs @google-cloud/kms 5.x`,
        );
      }
    }
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
    // A fresh options object per call: google-gax mutates it.
    const callOptions = {
      timeout: Math.max(1, Math.floor(options.timeoutMs)),
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
