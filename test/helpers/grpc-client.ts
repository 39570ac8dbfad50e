import { Metadata, type ChannelCredentials, type ServiceError } from '@grpc/grpc-js';
import { createAuthorityClient } from '../../src/client/index.js';

/**
 * A real grpc-js client of TokenAuthorityService for tests: the package's own
 * `createAuthorityClient`, with metadata as a second argument and no client-side message limit
 * (tests send oversized requests to see the server refuse them).
 */
export function authorityClient(target: string | number, opts: { credentials?: ChannelCredentials; deadlineMs?: number; channelOptions?: Record<string, unknown> } = {}) {
  const client = createAuthorityClient({
    address: typeof target === 'number' ? `127.0.0.1:${target}` : target,
    deadlineMs: opts.deadlineMs ?? 5000,
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
    channelOptions: { 'grpc.max_send_message_length': -1, 'grpc.max_receive_message_length': -1, ...opts.channelOptions },
  });
  const call = (metadata?: Metadata) => (metadata ? { metadata } : undefined);
  return {
    raw: client.raw,
    issue: (r: Parameters<typeof client.issue>[0], md?: Metadata) => client.issue(r, call(md)),
    verify: (r: Parameters<typeof client.verify>[0], md?: Metadata) => client.verify(r, call(md)),
    refresh: (r: Parameters<typeof client.refresh>[0], md?: Metadata) => client.refresh(r, call(md)),
    revoke: (r: Parameters<typeof client.revoke>[0], md?: Metadata) => client.revoke(r, call(md)),
    getJwks: () => client.getJwks(),
    getPropagation: (r: Parameters<typeof client.getPropagation>[0]) => client.getPropagation(r),
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
