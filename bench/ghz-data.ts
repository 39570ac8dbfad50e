/**
 * Writes the request data the ghz configs in bench/ghz/ read, by issuing sessions at a running
 * authority:
 *
 *   node dist/bench/ghz-data.js [--address 127.0.0.1:50051] [--sessions 20000] [--out bench/ghz/data]
 *
 *   <out>/verify.json   100 Verify requests (access tokens of 100 sessions, audience "orders"); ghz
 *                       sends them round-robin, so after the first 100 calls every call is a cache hit
 *   <out>/refresh.json  one Refresh request per session: a refresh token works once, so a ghz run may
 *                       send at most this many (bench/ghz/refresh.json sets total to 20 000)
 *
 * Issue is privileged: run it from loopback against an authority without TLS, or with a client
 * certificate the policy allows. Start the authority for load tests with the per-caller rate limits
 * off (TA_RATE_LIMIT_ISSUE=off TA_RATE_LIMIT_REFRESH=off TA_RATE_LIMIT_REVOKE=off): ghz is one caller.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status, type ServiceError } from '@grpc/grpc-js';
import { authorityClient } from '../test/helpers/grpc-client.js';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const arg = (name: string, dflt: string): string => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 && args[i + 1] !== undefined ? (args[i + 1] as string) : dflt;
  };
  const address = arg('address', process.env.TA_GRPC_ADDR ?? '127.0.0.1:50051');
  const sessions = Number(arg('sessions', '20000'));
  const out = arg('out', 'bench/ghz/data');
  if (!Number.isInteger(sessions) || sessions < 100) throw new Error('--sessions must be an integer ≥ 100');
  const client = authorityClient(address, { deadlineMs: 10_000 });
  const refreshTokens = new Array<string>(sessions);
  const accessTokens: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < sessions) {
      const i = next++;
      const res = await client.issue({ subject: `ghz-user-${i % 1000}`, audience: ['orders'], scopes: ['orders:read'] });
      refreshTokens[i] = res.refreshToken;
      if (i < 100) accessTokens[i] = res.accessToken;
    }
  };
  try {
    await Promise.all(Array.from({ length: 32 }, worker));
  } catch (err) {
    const e = err as ServiceError;
    if (e.code === status.RESOURCE_EXHAUSTED) {
      throw new Error(`Issue was rate-limited (${e.details}). Start the authority with TA_RATE_LIMIT_ISSUE=off for load tests.`);
    }
    if (e.code === status.PERMISSION_DENIED) throw new Error(`Issue is privileged (${e.details}): run this from loopback or with an allowed client certificate.`);
    throw err;
  } finally {
    client.close();
  }
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'verify.json'), `${JSON.stringify(accessTokens.map((token) => ({ token, audience: 'orders', required_scopes: ['orders:read'] })))}\n`);
  writeFileSync(join(out, 'refresh.json'), `${JSON.stringify(refreshTokens.map((t) => ({ refresh_token: t })))}\n`);
  process.stdout.write(`wrote ${join(out, 'verify.json')} (100 access tokens) and ${join(out, 'refresh.json')} (${sessions} refresh tokens, each usable once)\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`ghz-data: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
