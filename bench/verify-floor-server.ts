/**
 * A diagnostic server for the Verify RPC figures: the least a Verify service built from this
 * project's parts can cost — bare grpc-js, the ts-proto codecs, and the verifier library (keys from
 * the authority's JWKS, revocations from Redis, as in the sidecar) answering through
 * `verifySync` + `toVerifyResponse`. No unary wrapper, metrics, access log, caller identity, rate
 * limiter, health or reflection.
 *
 *   node dist/bench/verify-floor-server.js --jwks <url> --issuer <iss> --redis <url>
 *
 * Prints `{"port":N}` once serving. Its distance from the echo server is what protobuf and the
 * verifier cost per call; the distance between it and the sidecar or authority is what their
 * service layer costs.
 */
import { Server, ServerCredentials, type ServiceDefinition } from '@grpc/grpc-js';
import { VerifyRequest, VerifyResponse } from '../src/gen/tokenauthority/v1/token_authority.js';
import { toVerifyResponse } from '../src/grpc/verify-response.js';
import { RedisTokenStore } from '../src/store/redis-token-store.js';
import { createVerifier } from '../src/verifier/create-verifier.js';
import { createRemoteKeyResolver } from '../src/verifier/key-resolvers.js';

const PATH = '/tokenauthority.v1.TokenAuthorityService/Verify';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const arg = (name: string): string => {
    const i = args.indexOf(`--${name}`);
    const v = i >= 0 ? args[i + 1] : undefined;
    if (!v) throw new Error(`--${name} is required`);
    return v;
  };
  const keys = createRemoteKeyResolver({ jwksUrl: arg('jwks') });
  if (!(await keys.start())) throw new Error('JWKS not reachable');
  const store = new RedisTokenStore({ url: arg('redis'), retentionMs: 3_600_000 });
  const verifier = createVerifier({ issuer: arg('issuer'), keys, revocations: store });
  await verifier.start();
  const definition: ServiceDefinition = {
    verify: {
      path: PATH,
      requestStream: false,
      responseStream: false,
      requestDeserialize: (b: Buffer) => VerifyRequest.decode(b),
      requestSerialize: (m: VerifyRequest) => Buffer.from(VerifyRequest.encode(m).finish()),
      responseSerialize: (m: VerifyResponse) => Buffer.from(VerifyResponse.encode(m).finish()),
      responseDeserialize: (b: Buffer) => VerifyResponse.decode(b),
    },
  };
  const server = new Server();
  server.addService(definition, {
    verify: (call: { request: VerifyRequest }, callback: (err: null, res: VerifyResponse) => void) => {
      const req = call.request;
      const result = verifier.verifySync(req.token, { ...(req.audience ? { audience: req.audience } : {}), requiredScopes: req.requiredScopes });
      callback(null, toVerifyResponse(result));
    },
  });
  server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, port) => {
    if (err) {
      process.stderr.write(`verify-floor-server: ${err.message}\n`);
      process.exit(1);
    }
    process.stdout.write(`${JSON.stringify({ port })}\n`);
  });
  const stop = () => {
    server.forceShutdown();
    void verifier.stop().then(() => store.close()).finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`verify-floor-server: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
