import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startTestAuthority, TEST_ISSUER, type TestAuthority } from '../helpers/authority.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * The package as users install it: `npm pack`, then `npm install <tarball>` into a fresh project
 * that imports every public entry point by name, type-checks under `strict`, and runs against a
 * real authority and Redis: issue through `token-authority/client`, verify locally with
 * `token-authority` + `token-authority/redis`, revoke, and see the revocation.
 */
describe('the packed package, installed into a fresh project', function () {
  this.timeout(180_000);
  let redis: RedisServer;
  let ta: TestAuthority;
  let dir: string;

  before(async () => {
    redis = await startRedis();
    ta = await startTestAuthority({ TA_REDIS_URL: redis.url });
    dir = await mkdtemp(join(tmpdir(), 'ta-consumer-'));
  });
  after(async () => {
    await ta?.close();
    await redis?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('installs from its tarball, type-checks strictly, and verifies and revokes through every entry point', async () => {
    // dist/ is already built by `npm test`; --ignore-scripts keeps prepack from rebuilding it under the running suite.
    const { stdout: packed } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: REPO });
    const [info] = JSON.parse(packed) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const shipped = new Set(info!.files.map((f) => f.path));
    for (const entry of ['dist/src/verifier/index.js', 'dist/src/verifier/index.d.ts', 'dist/src/client/index.js', 'dist/src/verifier/grpc/index.js', 'dist/src/store/redis-revocation-source.js', 'dist/src/cli.js']) {
      assert.ok(shipped.has(entry), `the tarball lacks ${entry}`);
    }
    assert.ok(![...shipped].some((p) => p.startsWith('dist/test/') || p.startsWith('dist/bench/')), 'tests and benchmarks must not ship');

    const ownPkg = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
    await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', join(dir, info!.filename), `@types/node@${ownPkg.devDependencies['@types/node']}`], { cwd: dir });

    await writeFile(
      join(dir, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noUncheckedIndexedAccess: true, skipLibCheck: false, types: ['node'], outDir: 'out' }, include: ['consumer.ts'] }),
    );
    await writeFile(join(dir, 'consumer.ts'), CONSUMER);
    // The repository's own TypeScript compiler, on the consumer's strict project.
    await run(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', dir], { cwd: dir }).catch((err: { stdout?: string }) => {
      throw new Error(`the consumer does not type-check:\n${err.stdout ?? String(err)}`);
    });

    const { stdout } = await run(process.execPath, [join(dir, 'out/consumer.js')], {
      cwd: dir,
      env: { ...process.env, AUTHORITY: `127.0.0.1:${ta.running.grpcPort}`, JWKS: `${ta.httpBase}/.well-known/jwks.json`, REDIS: redis.url, ISSUER: TEST_ISSUER },
    });
    const result = JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    assert.deepEqual(result, { before: 'valid', subject: 'consumer-user', bearer: true, after: 'REVOKED', statusForRevoked: 16 });
  });
});

/** What a user writes: every entry point imported by its package name. */
const CONSUMER = `
import { createVerifier, ErrorCodes, createRemoteKeyResolver, TokenAuthorityError, type VerifyResult } from 'token-authority';
import { createRedisRevocationSource } from 'token-authority/redis';
import { bearerFromMetadata, statusForReason } from 'token-authority/grpc';
import { createAuthorityClient, type IssueResponse } from 'token-authority/client';
import { Metadata } from '@grpc/grpc-js';

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(name + ' is not set');
  return value;
}
const client = createAuthorityClient({ address: env('AUTHORITY') });
const keys = createRemoteKeyResolver({ jwksUrl: env('JWKS') });
const revocations = createRedisRevocationSource({ url: env('REDIS') });
const verifier = createVerifier({ issuer: env('ISSUER'), keys, revocations, audience: 'orders' });
// The authority's hooks are not part of the public verifier.
for (const internal of ['verifyNow', 'applyRevocation', 'isSessionRevoked']) if (internal in verifier) throw new Error(internal + ' is public');
await verifier.start();
const issued: IssueResponse = await client.issue({ subject: 'consumer-user', audience: ['orders'], scopes: ['read'] });
const before: VerifyResult = await verifier.verify(issued.accessToken);
const md = new Metadata();
md.set('authorization', 'Bearer ' + issued.accessToken);
const bearer = bearerFromMetadata(md);
const { sequence } = await client.revoke({ target: { $case: 'token', token: issued.accessToken } });
// Wait (bounded) until the feed has delivered the revocation's sequence to this verifier.
for (let i = 0; i < 1000 && verifier.status().revocation.appliedSeq < sequence; i++) await new Promise((r) => setTimeout(r, 5));
const after: VerifyResult = await verifier.verify(issued.accessToken);
if (!(new TokenAuthorityError(ErrorCodes.INTERNAL, 'probe') instanceof Error)) throw new Error('TokenAuthorityError is not an Error');
console.log(JSON.stringify({
  before: before.valid ? 'valid' : before.reason,
  subject: before.valid ? before.claims.subject : null,
  bearer: bearer === issued.accessToken,
  after: after.valid ? 'valid' : after.reason,
  statusForRevoked: after.valid ? null : statusForReason(after.reason),
}));
client.close();
// The verifier closes nothing it was given: what this file created, it closes.
await verifier.stop();
keys.stop();
await revocations.close();
process.exit(0);
`;
