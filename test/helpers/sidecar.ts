import { runCli, type CliProcess } from './cli-process.js';
import { authorityClient, type AuthorityClient } from './grpc-client.js';
import { TEST_ISSUER } from './authority.js';

export interface SidecarProcess {
  proc: CliProcess;
  grpcPort: number;
  httpPort: number;
  instanceId: string;
  client: AuthorityClient;
  status(): Promise<{ revocation: { appliedSeq: number; stale: boolean; entries: { jti: number; sid: number; sub: number } }; cache: { hits: number } }>;
  stop(): Promise<void>;
}

/** A real `token-authority sidecar` process on free loopback ports. */
export async function startSidecarProcess(opts: { authorityHttpPort: number; redisUrl: string; instanceId: string; env?: Record<string, string> }): Promise<SidecarProcess> {
  const proc = runCli(['sidecar'], {
    TA_GRPC_ADDR: '127.0.0.1:0',
    TA_HTTP_ADDR: '127.0.0.1:0',
    TA_AUTHORITY_URL: `http://127.0.0.1:${opts.authorityHttpPort}`,
    TA_REDIS_URL: opts.redisUrl,
    TA_ISSUER: TEST_ISSUER,
    TA_INSTANCE_ID: opts.instanceId,
    // Tests name the audience per request where they check one.
    TA_AUDIENCE: '*',
    TA_LOG_LEVEL: 'info',
    ...opts.env,
  });
  const line = await proc.waitForLine((l) => l.msg === 'sidecar serving', 20_000);
  const grpcPort = line.grpcPort as number;
  const httpPort = line.httpPort as number;
  const client = authorityClient(grpcPort);
  return {
    proc,
    grpcPort,
    httpPort,
    instanceId: opts.instanceId,
    client,
    async status() {
      return (await (await fetch(`http://127.0.0.1:${httpPort}/status`)).json()) as never;
    },
    async stop() {
      client.close();
      proc.kill('SIGTERM');
      await proc.exited;
    },
  };
}
