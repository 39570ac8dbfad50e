/**
 * An example service protected by the local verifier: a grpc-js server whose one method requires a
 * token for audience "orders" with scope "orders:read". It uses the authority's own
 * GetJwks/Verify messages as its request/response types only to stay self-contained; a real
 * service has its own proto.
 *
 * Run (with an authority on 127.0.0.1:8080 and Redis at $TA_REDIS_URL):
 *   node dist/examples/orders-service.js
 */
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { createVerifier, createRemoteKeyResolver } from '../src/verifier/index.js';
import { requireToken } from '../src/verifier/grpc/index.js';
import { createRedisRevocationSource } from '../src/store/redis-revocation-source.js';
import { TokenAuthorityServiceService, type GetJwksRequest, type GetJwksResponse } from '../src/gen/tokenauthority/v1/token_authority.js';

export async function startOrdersService(opts: { issuer: string; authorityUrl: string; redisUrl: string; port?: number }) {
  // The verifier uses these but does not own them: stop() below closes each one.
  const keys = createRemoteKeyResolver({ jwksUrl: `${opts.authorityUrl}/.well-known/jwks.json` });
  const revocations = createRedisRevocationSource({ url: opts.redisUrl });
  const verifier = createVerifier({ issuer: opts.issuer, keys, revocations, audience: 'orders' });
  await verifier.start();

  const server = new Server();
  // Borrow the GetJwks method's shape as "GetOrder": the interesting part is requireToken.
  server.addService({ getJwks: TokenAuthorityServiceService.getJwks }, {
    getJwks: requireToken<GetJwksRequest, GetJwksResponse>(verifier, { requiredScopes: ['orders:read'] }, (_call, callback, claims) => {
      callback(null, { jwksJson: JSON.stringify({ order: 42, owner: claims.subject }), keys: [] });
    }),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${opts.port ?? 0}`, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    port,
    verifier,
    /** Closes everything it started: the server, then the verifier, then the resolver and the Redis source. */
    async stop() {
      await new Promise<void>((r) => server.tryShutdown(() => r()));
      await verifier.stop();
      keys.stop();
      await revocations.close();
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const env = process.env;
  const running = await startOrdersService({
    issuer: env.TA_ISSUER ?? 'http://127.0.0.1:8080',
    authorityUrl: env.TA_AUTHORITY_URL ?? 'http://127.0.0.1:8080',
    redisUrl: env.TA_REDIS_URL ?? 'redis://127.0.0.1:6379',
    port: Number(env.PORT ?? 50071),
  });
  process.stdout.write(`orders service on 127.0.0.1:${running.port}\n`);
  process.on('SIGINT', () => void running.stop().then(() => process.exit(0)));
}
