import { credentials, Metadata, type ChannelCredentials, type ServiceError } from '@grpc/grpc-js';
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
} from '../../src/gen/tokenauthority/v1/token_authority.js';

type Unary<Req, Res> = (req: Req, md: Metadata, opts: { deadline: Date }, cb: (err: ServiceError | null, res: Res) => void) => unknown;

function promisify<Req, Res>(client: TokenAuthorityServiceClient, fn: Unary<Req, Res>, deadlineMs: number) {
  return (req: Req, metadata = new Metadata()): Promise<Res> =>
    new Promise((resolve, reject) =>
      fn.call(client, req, metadata, { deadline: new Date(Date.now() + deadlineMs) }, (err, res) => (err ? reject(err) : resolve(res))),
    );
}

/** A real grpc-js client of TokenAuthorityService with promise methods taking partial requests. */
export function authorityClient(target: string | number, opts: { credentials?: ChannelCredentials; deadlineMs?: number; channelOptions?: Record<string, unknown> } = {}) {
  const address = typeof target === 'number' ? `127.0.0.1:${target}` : target;
  const client = new TokenAuthorityServiceClient(address, opts.credentials ?? credentials.createInsecure(), opts.channelOptions);
  const d = opts.deadlineMs ?? 5000;
  const issue = promisify<IssueRequest, IssueResponse>(client, client.issue as never, d);
  const verify = promisify<VerifyRequest, VerifyResponse>(client, client.verify as never, d);
  const refresh = promisify<RefreshRequest, RefreshResponse>(client, client.refresh as never, d);
  const revoke = promisify<RevokeRequest, RevokeResponse>(client, client.revoke as never, d);
  const getJwks = promisify<GetJwksRequest, GetJwksResponse>(client, client.getJwks as never, d);
  const getPropagation = promisify<GetPropagationRequest, GetPropagationResponse>(client, client.getPropagation as never, d);
  return {
    raw: client,
    issue: (r: Partial<IssueRequest>, md?: Metadata) => issue(IssueRequest.fromPartial(r), md),
    verify: (r: Partial<VerifyRequest>, md?: Metadata) => verify(VerifyRequest.fromPartial(r), md),
    refresh: (r: Partial<RefreshRequest>, md?: Metadata) => refresh(RefreshRequest.fromPartial(r), md),
    revoke: (r: Partial<RevokeRequest>, md?: Metadata) => revoke(RevokeRequest.fromPartial(r), md),
    getJwks: () => getJwks(GetJwksRequest.fromPartial({})),
    getPropagation: (r: Partial<GetPropagationRequest>) => getPropagation(GetPropagationRequest.fromPartial(r)),
    close: () => client.close(),
  };
}

export type AuthorityClient = ReturnType<typeof authorityClient>;

/** Await a promise expected to fail with a gRPC status; returns the error for further checks. */
export async function expectStatus(p: Promise<unknown>, code: number, messageIncludes?: string | RegExp): Promise<ServiceError> {
  let err: ServiceError | undefined;
  try {
    await p;
  } catch (e) {
    err = e as ServiceError;
  }
  if (!err) throw new Error(`expected gRPC status ${code}, but the call succeeded`);
  if (err.code !== code) throw new Error(`expected gRPC status ${code}, got ${err.code}: ${err.details}`);
  if (messageIncludes !== undefined) {
    const ok = typeof messageIncludes === 'string' ? err.details.includes(messageIncludes) : messageIncludes.test(err.details);
    if (!ok) throw new Error(`status ${code} message "${err.details}" does not match ${String(messageIncludes)}`);
  }
  return err;
}
