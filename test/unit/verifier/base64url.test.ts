import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { hasCanonicalTail } from '../../../src/verifier/base64url.js';

const BASE64URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
/** The alphabet check verify-token.ts makes, then the rule of the module under test. */
const isCanonicalBase64url = (text: string) => /^[A-Za-z0-9_-]*$/.test(text) && hasCanonicalTail(text, 0, text.length);
const base64urlEncode = (data: Uint8Array | string) => (typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data)).toString('base64url');
const base64urlDecode = (text: string) => (isCanonicalBase64url(text) ? Buffer.from(text, 'base64url') : undefined);

describe('base64url', () => {
  it('round-trips any bytes, and its encoding is canonical', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 70 }), (bytes) => {
        const text = base64urlEncode(bytes);
        assert.ok(isCanonicalBase64url(text));
        assert.deepEqual(new Uint8Array(base64urlDecode(text) as Buffer), bytes);
      }),
    );
    assert.equal(base64urlEncode('hé'), Buffer.from('hé').toString('base64url'));
    assert.equal(base64urlEncode(randomBytes(32).subarray(8, 8)), '');
  });

  it('accepts exactly the texts that re-encode to themselves (property)', () => {
    const chars = `${BASE64URL_ALPHABET}=+/ .\n`;
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...chars), { maxLength: 12 }), (list) => {
        const text = list.join('');
        const reencoded = Buffer.from(text, 'base64url').toString('base64url');
        assert.equal(isCanonicalBase64url(text), reencoded === text, JSON.stringify(text));
      }),
      { numRuns: 2000 },
    );
  });

  it('rejects padding, the standard alphabet, non-zero trailing bits and impossible lengths', () => {
    for (const bad of ['QQ==', 'QQ=', 'a+b/', 'QR', 'QUF', 'QUJ', 'A', 'AAAAA', 'QQ\n', ' QQ', 'Q Q', 'QQé', 'QQ\u0000']) {
      assert.equal(isCanonicalBase64url(bad), false, JSON.stringify(bad));
      assert.equal(base64urlDecode(bad), undefined);
    }
    for (const good of ['', 'QQ', 'QUE', 'QUFB', '-_-_']) assert.equal(isCanonicalBase64url(good), true, good);
  });
});
