import assert from 'node:assert/strict';
import { httpTargetUrisMatch, MAX_HTU_CHARS, normalizeHttpTargetUri } from '../../../src/verifier/http-target-uri.js';

describe('DPoP htu matching (RFC 9449 §4.3: scheme, host, port, path; no query or fragment)', () => {
  const same: Array<[string, string]> = [
    ['https://api.test/orders', 'https://api.test/orders'],
    ['https://API.Test/orders', 'https://api.test/orders'],
    ['HTTPS://api.test/orders', 'https://api.test/orders'],
    ['https://api.test:443/orders', 'https://api.test/orders'],
    ['http://api.test:80/orders', 'http://api.test/orders'],
    ['https://api.test/orders?page=2', 'https://api.test/orders'],
    ['https://api.test/orders#frag', 'https://api.test/orders?x=1#y'],
    ['https://api.test', 'https://api.test/'],
    ['https://api.test/a/./b/../c', 'https://api.test/a/c'],
    ['https://api.test/caf%c3%a9', 'https://api.test/caf%C3%A9'],
    ['https://api.test/%7Euser', 'https://api.test/~user'],
    ['https://api.test/%61bc', 'https://api.test/abc'],
    ['https://[::1]:8443/x', 'https://[0:0:0:0:0:0:0:1]:8443/x'],
    ['https://127.0.0.1:8443/x', 'https://127.0.0.1:8443/x'],
  ];
  const different: Array<[string, string]> = [
    ['https://api.test/orders', 'http://api.test/orders'],
    ['https://api.test/orders', 'https://api.test:8443/orders'],
    ['http://api.test:443/orders', 'http://api.test/orders'],
    ['https://api.test/orders', 'https://api.test/orders/'],
    ['https://api.test/orders', 'https://api.test/Orders'],
    ['https://api.test/orders', 'https://api.test.evil/orders'],
    ['https://api.test/a%2Fb', 'https://api.test/a/b'],
    ['https://api.test/orders', 'https://user@api.test/orders'],
    ['https://api.test/orders', '/orders'],
    ['https://api.test/orders', 'ftp://api.test/orders'],
    ['https://api.test/orders', 'not a uri'],
  ];
  for (const [a, b] of same) {
    it(`match: ${a}  ~  ${b}`, () => {
      assert.equal(httpTargetUrisMatch(a, b), true, `${normalizeHttpTargetUri(a)} vs ${normalizeHttpTargetUri(b)}`);
      assert.equal(httpTargetUrisMatch(b, a), true);
    });
  }
  for (const [a, b] of different) {
    it(`no match: ${a}  !~  ${b}`, () => {
      assert.equal(httpTargetUrisMatch(a, b), false);
      assert.equal(httpTargetUrisMatch(b, a), false);
    });
  }

  it('two invalid URIs never match each other', () => {
    assert.equal(httpTargetUrisMatch('nope', 'nope'), false);
    assert.equal(httpTargetUrisMatch(42, '42'), false);
  });

  it('refuses URIs longer than the bound', () => {
    assert.equal(normalizeHttpTargetUri(`https://api.test/${'a'.repeat(MAX_HTU_CHARS)}`), undefined);
  });
});
