import assert from 'node:assert/strict';
import { generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import { ErrorCodes, isTokenAuthorityError } from '../../../src/shared/errors.js';
import { MutableKeyResolver, createStaticKeyResolver, keysFromJwks } from '../../../src/verifier/key-resolvers.js';
import { verifySignatureAndParse } from '../../../src/verifier/verify-token.js';
import { accessPayload, forgeToken, generateTestKey, type TestKey } from '../../helpers/token-forge.js';

const isKeyError = (e: unknown) => isTokenAuthorityError(e) && e.code === ErrorCodes.KEY;
const publicJwk = (k: TestKey, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  ...(k.publicKey.export({ format: 'jwk' }) as JsonWebKey),
  kid: k.kid,
  ...extra,
});

describe('static key resolvers', () => {
  let es: TestKey, ed: TestKey, rs: TestKey;
  before(() => {
    es = generateTestKey('ES256', 'es');
    ed = generateTestKey('EdDSA', 'ed');
    rs = generateTestKey('RS256', 'rs');
  });

  describe('createStaticKeyResolver', () => {
    it('finds keys by kid', () => {
      const r = createStaticKeyResolver([es.verificationKey, ed.verificationKey, rs.verificationKey]);
      assert.equal(r.get('es')?.key, es.publicKey);
      assert.equal(r.get('rs')?.alg, 'RS256');
      assert.equal(r.get('nope'), undefined);
      assert.equal(r.resolveUnknown, undefined);
    });

    it('refuses private keys, keys that do not fit their alg, weak RSA and repeated kids', () => {
      const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
      const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey;
      const bad = [
        [{ kid: 'x', alg: 'ES256', key: es.privateKey }],
        [{ kid: 'x', alg: 'ES256', key: rs.publicKey }],
        [{ kid: 'x', alg: 'ES256', key: p384 }],
        [{ kid: 'x', alg: 'EdDSA', key: es.publicKey }],
        [{ kid: 'x', alg: 'RS256', key: ed.publicKey }],
        [{ kid: 'x', alg: 'RS256', key: weak }],
        [{ kid: 'x', alg: 'HS256', key: es.publicKey }],
        [{ kid: '', alg: 'ES256', key: es.publicKey }],
        [{ kid: 'k'.repeat(129), alg: 'ES256', key: es.publicKey }],
        [es.verificationKey, { ...ed.verificationKey, kid: 'es' }],
      ] as const;
      for (const keys of bad) assert.throws(() => createStaticKeyResolver(keys as never), isKeyError);
    });
  });

  describe('MutableKeyResolver', () => {
    it('swaps the whole key set, and keeps the old one if the new one is invalid', () => {
      const r = new MutableKeyResolver([es.verificationKey]);
      assert.ok(r.get('es'));
      r.replace([ed.verificationKey, rs.verificationKey]);
      assert.equal(r.get('es'), undefined);
      assert.ok(r.get('ed'));
      assert.deepEqual(r.kids().sort(), ['ed', 'rs']);
      assert.equal(r.size, 2);
      assert.throws(() => r.replace([es.verificationKey, { kid: 'bad', alg: 'ES256', key: rs.publicKey }]), isKeyError);
      assert.deepEqual(r.kids().sort(), ['ed', 'rs']);
      assert.equal(new MutableKeyResolver().size, 0);
    });
  });

  describe('keysFromJwks', () => {
    it('turns public signing JWKs into keys that verify tokens, inferring alg when absent', () => {
      const jwks = { keys: [publicJwk(es, { alg: 'ES256', use: 'sig' }), publicJwk(ed), publicJwk(rs, { key_ops: ['verify'] })] };
      const { keys, skipped } = keysFromJwks(JSON.parse(JSON.stringify(jwks)));
      assert.deepEqual(skipped, []);
      assert.deepEqual(keys.map((k) => [k.kid, k.alg]), [['es', 'ES256'], ['ed', 'EdDSA'], ['rs', 'RS256']]);
      const resolver = createStaticKeyResolver(keys);
      const opts = { issuer: 'https://issuer.test', algorithms: ['ES256', 'EdDSA', 'RS256'] as const, clockSkewSec: 0, maxTokenBytes: 8192 };
      for (const k of [es, ed, rs]) {
        const out = verifySignatureAndParse(forgeToken({ key: k, payload: accessPayload() }), resolver, opts);
        assert.ok(out.ok, `${k.alg} token should verify with the key from the JWKS`);
      }
    });

    it('skips everything else, saying why', () => {
      const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' });
      const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ format: 'jwk' });
      const x25519 = generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' });
      const badPoint = publicJwk(es, { kid: 'badpoint' });
      badPoint.x = Buffer.alloc(32, 1).toString('base64url');
      const entries: Array<[unknown, RegExp]> = [
        ['a string', /not a JSON object/],
        [null, /not a JSON object/],
        [[publicJwk(es)], /not a JSON object/],
        [{ ...publicJwk(es), kid: undefined }, /kid/],
        [{ ...publicJwk(es), kid: 7 }, /kid/],
        [{ ...(es.privateKey.export({ format: 'jwk' }) as object), kid: 'priv-ec' }, /private/],
        [{ ...(rs.privateKey.export({ format: 'jwk' }) as object), kid: 'priv-rsa' }, /private/],
        [{ ...(ed.privateKey.export({ format: 'jwk' }) as object), kid: 'priv-ed' }, /private/],
        [{ kty: 'oct', k: 'c2VjcmV0', kid: 'hmac', alg: 'HS256' }, /symmetric/],
        [publicJwk(es, { kid: 'enc', use: 'enc' }), /use/],
        [publicJwk(es, { kid: 'ops', key_ops: ['encrypt'] }), /key_ops/],
        [publicJwk(es, { kid: 'ops2', key_ops: 'verify' }), /key_ops/],
        [{ ...p384, kid: 'p384' }, /kty\/crv/],
        [{ ...p384, kid: 'p384b', alg: 'ES256' }, /kty\/crv/],
        [{ ...x25519, kid: 'x25519' }, /kty\/crv/],
        [publicJwk(es, { kid: 'mismatch', alg: 'RS256' }), /does not fit/],
        [publicJwk(rs, { kid: 'ps', alg: 'PS256' }), /does not fit/],
        [publicJwk(es, { kid: 'none', alg: 'none' }), /does not fit/],
        [{ ...weak, kid: 'weak' }, /2048/],
        [badPoint, /not a valid key/],
        [publicJwk(ed, { kid: 'es' }), /duplicate/], // same kid as the first good key
      ];
      const { keys, skipped } = keysFromJwks({ keys: [publicJwk(es), ...entries.map(([e]) => e)] });
      assert.deepEqual(keys.map((k) => k.kid), ['es']);
      assert.equal(skipped.length, entries.length);
      skipped.forEach((s, i) => {
        assert.equal(s.index, i + 1);
        assert.match(s.reason, (entries[i] as [unknown, RegExp])[1], `entry ${i}: ${s.reason}`);
      });
      assert.equal(skipped.find((s) => s.index === 6)?.kid, 'priv-ec');
      assert.ok(!JSON.stringify(skipped).includes(String((es.privateKey.export({ format: 'jwk' }) as JsonWebKey).d)), 'never echoes private material');
    });

    it('honours an algorithm allow-list', () => {
      const { keys, skipped } = keysFromJwks({ keys: [publicJwk(es), publicJwk(rs)] }, { algorithms: ['RS256'] });
      assert.deepEqual(keys.map((k) => k.kid), ['rs']);
      assert.match(skipped[0]?.reason ?? '', /not allowed/);
    });

    it('throws only when there is no keys array', () => {
      for (const doc of [{}, { keys: 'x' }, null, undefined]) assert.throws(() => keysFromJwks(doc as never), isKeyError);
      assert.deepEqual(keysFromJwks({ keys: [] }), { keys: [], skipped: [] });
    });
  });
});
