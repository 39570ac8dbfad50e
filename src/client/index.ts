/**
 * `token-authority/client`: a typed gRPC client of the authority for TypeScript services.
 *
 * `createAuthorityClient({ address, tls })` opens one channel with settings suited to a service
 * that calls the authority all day (keepalive so a channel with calls in flight notices a dead peer, bounded
 * message size, reconnect backoff) and returns promise methods taking partial requests, each with
 * a deadline. The generated `TokenAuthorityServiceClient` and message types are exported too, for
 * callers that want the raw callback API.
 */
import { readFileSync } from 'node:fs';
import { credentials, Metadata, type CallOptions, type ChannelCredentials, type ChannelOptions, type ClientUnaryCall, type ServiceError } from '@grpc/grpc-js';
import {
  GetJwksRequest,
  GetPropagationRequest,
  IssueRequest,
  RefreshRequest,
  RevokeRequest,
  TokenAuthorityServiceClient,
  VerifyRequest,
  type GetJwksResponse,
  type GetPropagationResponse,
  type IssueResponse,
  type RefreshResponse,
  type RevokeResponse,
  type VerifyResponse,
} from '../gen/tokenauthority/v1/token_authority.js';

export * from '../gen/tokenauthority/v1/token_authority.js';

/** TLS for the channel: PEM contents (strings or Buffers) or file paths. */
export interface AuthorityClientTls {
  /** CA certificate(s) that sign the authority's certificate (PEM). Default: the system roots. */
  ca?: string | Buffer;
  /** Client certificate chain (PEM), for mutual TLS. */
  cert?: string | Buffer;
  /** Client private key (PEM), for mutual TLS. */
  key?: string | Buffer;
  /** Read `ca`, `cert` and `key` as file paths rather than PEM text. Default: false. */
  fromFiles?: boolean;
  /** Expected server name, when the address is an IP or differs from the certificate's name. */
  serverName?: string;
}

export interface AuthorityClientOptions {
  /** `host:port` of the authority's gRPC listener (default 127.0.0.1:50051). */
  address?: string;
  /** TLS or mutual TLS; omitted = plaintext (loopback development only). */
  tls?: AuthorityClientTls;
  /** grpc-js channel credentials built by the caller; they replace `tls`. */
  credentials?: ChannelCredentials;
  /** Deadline of every call unless the call passes its own (default 5000 ms). */
  deadlineMs?: number;
  /** Extra grpc-js channel options; they override the defaults below. */
  channelOptions?: ChannelOptions;
}

/**
 * Channel defaults: keepalive pings every 5 min while calls are in flight (gRPC servers and proxies
 * commonly refuse pings more often than that with GOAWAY "too_many_pings"), 64 KiB messages.
 */
export const AUTHORITY_CHANNEL_DEFAULTS: Readonly<ChannelOptions> = Object.freeze({
  'grpc.keepalive_time_ms': 300_000,
  'grpc.keepalive_timeout_ms': 20_000,
  'grpc.max_receive_message_length': 64 * 1024,
  'grpc.max_send_message_length': 64 * 1024,
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 5_000,
});

/** Per-call settings: metadata and a deadline (ms from now) replacing the client default. */
export interface CallSettings {
  metadata?: Metadata;
  deadlineMs?: number;
}

export interface AuthorityClient {
  issue(request: Partial<IssueRequest>, call?: CallSettings): Promise<IssueResponse>;
  verify(request: Partial<VerifyRequest>, call?: CallSettings): Promise<VerifyResponse>;
  refresh(request: Partial<RefreshRequest>, call?: CallSettings): Promise<RefreshResponse>;
  revoke(request: Partial<RevokeRequest>, call?: CallSettings): Promise<RevokeResponse>;
  getJwks(call?: CallSettings): Promise<GetJwksResponse>;
  getPropagation(request: Partial<GetPropagationRequest>, call?: CallSettings): Promise<GetPropagationResponse>;
  /** The generated callback client on the same channel. */
  readonly raw: TokenAuthorityServiceClient;
  /** Close the channel; calls in flight fail with CANCELLED. */
  close(): void;
}

function pem(value: string | Buffer | undefined, fromFiles: boolean | undefined): Buffer | null {
  if (value === undefined) return null;
  if (fromFiles) return readFileSync(value);
  return Buffer.isBuffer(value) ? value : Buffer.from(value);
}

function channelCredentials(tls: AuthorityClientTls | undefined): ChannelCredentials {
  if (!tls) return credentials.createInsecure();
  const cert = pem(tls.cert, tls.fromFiles);
  const key = pem(tls.key, tls.fromFiles);
  if ((cert === null) !== (key === null)) throw new TypeError('createAuthorityClient: tls.cert and tls.key go together (mutual TLS needs both)');
  return credentials.createSsl(pem(tls.ca, tls.fromFiles), key, cert);
}

type UnaryMethod<Req, Res> = (request: Req, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: Res) => void) => ClientUnaryCall;

/** A client of the authority with promise methods. See {@link AuthorityClientOptions} for defaults. */
export function createAuthorityClient(options: AuthorityClientOptions = {}): AuthorityClient {
  const deadlineMs = options.deadlineMs ?? 5000;
  if (!Number.isFinite(deadlineMs) || deadlineMs <= 0) throw new TypeError('createAuthorityClient: deadlineMs must be a positive number of milliseconds');
  const channelOptions: ChannelOptions = { ...AUTHORITY_CHANNEL_DEFAULTS, ...options.channelOptions };
  if (options.tls?.serverName) channelOptions['grpc.ssl_target_name_override'] = options.tls.serverName;
  const raw = new TokenAuthorityServiceClient(options.address ?? '127.0.0.1:50051', options.credentials ?? channelCredentials(options.tls), channelOptions);

  function unary<Req, Res>(method: UnaryMethod<Req, Res>, request: Req, call: CallSettings | undefined): Promise<Res> {
    const deadline = new Date(Date.now() + (call?.deadlineMs ?? deadlineMs));
    return new Promise((resolve, reject) => {
      method.call(raw, request, call?.metadata ?? new Metadata(), { deadline }, (err, res) => (err ? reject(err) : resolve(res)));
    });
  }

  return {
    issue: (r, call) => unary<IssueRequest, IssueResponse>(raw.issue as UnaryMethod<IssueRequest, IssueResponse>, IssueRequest.fromPartial(r), call),
    verify: (r, call) => unary<VerifyRequest, VerifyResponse>(raw.verify as UnaryMethod<VerifyRequest, VerifyResponse>, VerifyRequest.fromPartial(r), call),
    refresh: (r, call) => unary<RefreshRequest, RefreshResponse>(raw.refresh as UnaryMethod<RefreshRequest, RefreshResponse>, RefreshRequest.fromPartial(r), call),
    revoke: (r, call) => unary<RevokeRequest, RevokeResponse>(raw.revoke as UnaryMethod<RevokeRequest, RevokeResponse>, RevokeRequest.fromPartial(r), call),
    getJwks: (call) => unary<GetJwksRequest, GetJwksResponse>(raw.getJwks as UnaryMethod<GetJwksRequest, GetJwksResponse>, GetJwksRequest.fromPartial({}), call),
    getPropagation: (r, call) =>
      unary<GetPropagationRequest, GetPropagationResponse>(raw.getPropagation as UnaryMethod<GetPropagationRequest, GetPropagationResponse>, GetPropagationRequest.fromPartial(r), call),
    raw,
    close: () => raw.close(),
  };
}
