import assert from 'node:assert/strict';
import { bearerToken, presentedToken } from '../../../src/verifier/bearer-token.js';

describe('the Authorization credential (Bearer, RFC 6750 §2.1; DPoP, RFC 9449 §7.1)', () => {
  const table: Array<[string | undefined, ReturnType<typeof presentedToken>]> = [
    ['Bearer abc', { scheme: 'Bearer', token: 'abc' }],
    ['bearer abc', { scheme: 'Bearer', token: 'abc' }],
    ['BEARER   abc', { scheme: 'Bearer', token: 'abc' }],
    ['  Bearer abc\t', { scheme: 'Bearer', token: 'abc' }],
    ['DPoP abc', { scheme: 'DPoP', token: 'abc' }],
    ['dpop abc', { scheme: 'DPoP', token: 'abc' }],
    ['DPOP  a.b.c', { scheme: 'DPoP', token: 'a.b.c' }],
    ['Bearer abc\u00a0', { scheme: 'Bearer', token: 'abc\u00a0' }],
    ['DPoP abc def', { scheme: 'DPoP', token: 'abc def' }],
    ['DPoP', undefined],
    ['DPoP ', undefined],
    ['Bearer', undefined],
    ['Bearer    ', undefined],
    ['DPoPabc', undefined],
    ['Bearerabc', undefined],
    ['Basic dXNlcjpwYXNz', undefined],
    ['DPoP\tabc', undefined],
    ['', undefined],
    [undefined, undefined],
  ];
  for (const [header, expected] of table) {
    it(`${JSON.stringify(header)} → ${JSON.stringify(expected)}`, () => {
      assert.deepEqual(presentedToken(header), expected);
      assert.equal(bearerToken(header), expected?.scheme === 'Bearer' ? expected.token : undefined, 'bearerToken takes Bearer only');
    });
  }

  it('a header of a million blanks costs a linear scan (answers, no backtracking)', () => {
    assert.equal(presentedToken(`DPoP${' '.repeat(1_000_000)}`), undefined);
  });
});
