import assert from 'node:assert/strict';
import { Metadata, status, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { createVerifier } from '../../../../src/verifier/create-verifier.js';
import { createStaticKeyResolver } from '../../../../src/verifier/key-resolvers.js';
import { requireToken, type AuthenticatedUnaryHandler } from '../../../../src/verifier/grpc/require-token.js';
import { accessPayload, forgeToken, generateTestKey } from '../../../helpers/token-forge.js';
import { recordingLogger } from '../../../helpers/recording-logger.js';

const ISSUER = 'https://issuer.test';
const METHOD = '/orders.v1.Orders/GetOrder';

/** Calls the wrapped handler as grpc-js would (the call carries metadata and its path); resolves with what it answered. */
function call(handler: ReturnType<typeof requireToken<unknown, unknown>>, token: string) {
  const metadata = new Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  const fakeCall = { metadata, request: {}, getPath: () => METHOD } as unknown as ServerUnaryCall<unknown, unknown>;
  return new Promise<{ code?: number; details?: string }>((resolve) => {
    const callback: sendUnaryData<unknown> = (err) => resolve(err ? { code: (err as { code?: number }).code, details: (err as { details?: string }).details } : { code: status.OK });
    handler(fakeCall, callback);
  });
}

describe('requireToken (token-authority/grpc)', () => {
  const key = generateTestKey('ES256');
  const token = forgeToken({ key, payload: accessPayload({ iss: ISSUER, nowSec: Math.floor(Date.now() / 1000) }) });
  const failing: Array<[string, AuthenticatedUnaryHandler<unknown, unknown>]> = [
    ['throws', () => { throw new Error('db down'); }],
    ['rejects', async () => { throw new Error('db down'); }],
  ];
  for (const [how, handler] of failing) {
    it(`a handler that ${how} is logged (method, message, never the token) and answered INTERNAL`, async () => {
      const logger = recordingLogger();
      const verifier = createVerifier({ issuer: ISSUER, keys: createStaticKeyResolver([key.verificationKey]), logger });
      const answer = await call(requireToken(verifier, {}, handler), token);
      assert.deepEqual(answer, { code: status.INTERNAL, details: 'internal error' });
      const line = await logger.waitFor((l) => l.level === 'error');
      assert.equal(line.fields.method, METHOD);
      assert.equal(line.fields.err, 'db down');
      assert.ok(!JSON.stringify(logger.lines).includes(token), 'the token is never logged');
    });
  }

  it('logs to options.logger when one is given, and still checks the requirements', async () => {
    const own = recordingLogger();
    const verifier = createVerifier({ issuer: ISSUER, keys: createStaticKeyResolver([key.verificationKey]) });
    assert.equal((await call(requireToken(verifier, { logger: own }, async () => { throw new Error('x'); }), token)).code, status.INTERNAL);
    assert.equal(own.lines.filter((l) => l.level === 'error').length, 1);
    const scoped = await call(requireToken(verifier, { requiredScopes: ['nope'], logger: own }, (_c, cb) => cb(null, {})), token);
    assert.equal(scoped.code, status.PERMISSION_DENIED);
  });
});
