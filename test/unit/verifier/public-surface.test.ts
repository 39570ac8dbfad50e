import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as library from '../../../src/verifier/index.js';
import * as grpc from '../../../src/verifier/grpc/index.js';
import * as redis from '../../../src/store/redis-revocation-source.js';
import * as client from '../../../src/client/index.js';

const REPO = fileURLToPath(new URL('../../../../', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : name.endsWith('.ts') ? [path] : [];
  });
}

describe('the library surface (token-authority, /grpc, /redis)', () => {
  it('exports factories and values only: no verifier internals, no resolver classes', () => {
    assert.deepEqual(Object.keys(library).sort(), [
      'DEFAULT_MAX_TOKEN_LIFETIME_MS', 'ErrorCodes', 'SIGNING_ALGORITHMS', 'TokenAuthorityError', 'VerifyReasons',
      'createRemoteKeyResolver', 'createStaticKeyResolver', 'createVerifier', 'keysFromJwks', 'parseFeedMessage',
    ]);
    assert.deepEqual(Object.keys(grpc).sort(), ['bearerFromMetadata', 'requireToken', 'statusForReason']);
    assert.deepEqual(Object.keys(redis).sort(), ['createRedisDpopReplayCache', 'createRedisRevocationSource']);
  });

  it('every create… function a TSDoc @example of the library names is exported by a package entry', () => {
    const exported = new Set([...Object.keys(library), ...Object.keys(grpc), ...Object.keys(redis), ...Object.keys(client)]);
    const named: string[] = [];
    for (const file of [...sources(join(REPO, 'src/verifier')), join(REPO, 'src/store/redis-revocation-source.ts'), join(REPO, 'src/store/redis-revocation-feed.ts'), join(REPO, 'src/client/index.ts')]) {
      for (const block of readFileSync(file, 'utf8').matchAll(/@example([\s\S]*?)\*\//g)) {
        for (const m of block[1]!.matchAll(/\b(create[A-Z]\w*|requireToken|bearerFromMetadata|statusForReason)\s*\(/g)) named.push(m[1]!);
      }
    }
    assert.ok(named.includes('createVerifier') && named.includes('createRemoteKeyResolver'), `examples found: ${named.join(', ')}`);
    assert.deepEqual(named.filter((n) => !exported.has(n)), [], 'named in an @example but not exported');
  });
});
