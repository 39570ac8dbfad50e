import assert from 'node:assert/strict';
import { loadConfig } from '../../../src/config/config.js';
import { isTokenAuthorityError } from '../../../src/shared/errors.js';
import { redactUrl, UNPARSEABLE_URL } from '../../../src/shared/redact-url.js';
import { parseRedisUrl } from '../../../src/store/redis-connection.js';

/**
 * L5: URLs in logs and messages never show a password, whatever characters it has; a URL that
 * cannot be parsed unambiguously is not shown at all.
 */
const SECRET = 'Hunter2';

/** [url, redacted form]: every password below contains SECRET. */
const CASES: ReadonlyArray<[string, string]> = [
  [`redis://ta:${SECRET}@redis.internal:6379/0`, 'redis://ta:***@redis.internal:6379/0'],
  [`redis://ta:${SECRET}@@h:6379`, 'redis://ta:***@h:6379'],
  [`redis://ta:p@${SECRET}@h:6379/2`, 'redis://ta:***@h:6379/2'],
  [`redis://ta:p:${SECRET}:x@h`, 'redis://ta:***@h'],
  [`redis://ta:p%40${SECRET}%2F@h`, 'redis://ta:***@h'],
  [`redis://:${SECRET}@h`, 'redis://:***@h'],
  [`redis://${SECRET}@h`, 'redis://***@h'],
  [`rediss://ta:${SECRET},x@[::1]:6380`, 'rediss://ta:***@[::1]:6380'],
  [`redis-sentinel://ta:p@ss:${SECRET}@s1:26379,s2:26379,[fd00::2]:26380/mymaster/1?sentinelUsername=sen&sentinelPassword=${SECRET}`,
    'redis-sentinel://ta:***@s1:26379,s2:26379,[fd00::2]:26380/mymaster/1?sentinelUsername=sen&sentinelPassword=***'],
  [`rediss-sentinel://s1,s2/m?sentinelPassword=${SECRET}%40x`, 'rediss-sentinel://s1,s2/m?sentinelPassword=***'],
  [`redis-cluster://ta:a@b:${SECRET}@n1:7000,n2:7001,n3:7002`, 'redis-cluster://ta:***@n1:7000,n2:7001,n3:7002'],
  [`redis-cluster://n1:7000,n2:7001`, 'redis-cluster://n1:7000,n2:7001'],
  [`https://ops:${SECRET}@auth.example.com:8443/base?token=${SECRET}&x=1#${SECRET}`, 'https://ops:***@auth.example.com:8443/base?token=***&x=1'],
  ['http://127.0.0.1:8080', 'http://127.0.0.1:8080'],
];

/** Passwords the text alone cannot separate from the host or path: never shown. */
const UNPARSEABLE: readonly string[] = [
  `redis://ta:p/${SECRET}@h:6379/0`,
  `redis://ta:1234/${SECRET}@h:6379`,
  `redis://ta:p?${SECRET}@h`,
  `redis://ta:12#${SECRET}@h`,
  `redis-sentinel://ta:p/${SECRET}@s1:26379,s2:26379/mymaster`,
  `rediss-cluster://ta:x/${SECRET}@n1:7000,n2:7001`,
  `redis://ta:${SECRET}`,
  `${SECRET}@redis:6379`,
  `not a url ${SECRET}`,
  `redis://h os${SECRET}:1`,
];

describe('URL redaction (L5)', () => {
  for (const [url, redacted] of CASES) {
    it(`redacts ${redacted}`, () => {
      const shown = redactUrl(url);
      assert.equal(shown, redacted);
      assert.ok(!shown.includes(SECRET), shown);
    });
  }

  for (const url of UNPARSEABLE) {
    it(`does not show ${url.replace(SECRET, '<secret>')}`, () => {
      assert.equal(redactUrl(url), UNPARSEABLE_URL);
    });
  }

  it('parseRedisUrl errors never carry the password, however it is written', () => {
    for (const url of [
      `redis://ta:p@${SECRET}@a:1,b:2`,
      `redis://ta:p/${SECRET}@h:6379/0`,
      `redis-cluster://ta:p:${SECRET}@n1:7000,n2:7001/3`,
      `redis-sentinel://ta:p%40${SECRET}@s1:1,s2:2/m?bogus=1`,
      `redis-sentinel://s1:1/m?sentinelPassword=${SECRET}&bogus=1`,
    ]) {
      assert.throws(() => parseRedisUrl(url), (err: unknown) => {
        assert.ok(isTokenAuthorityError(err));
        assert.ok(!err.message.includes(SECRET), err.message);
        return true;
      }, url);
    }
  });

  it('configuration errors about URLs never carry the password', () => {
    const cases: Array<Record<string, string>> = [
      { TA_ISSUER: `ftp://ops:${SECRET}@auth.example.com` },
      { TA_ISSUER: `ops:p/${SECRET}@auth.example.com` },
      { TA_REDIS_URL: `redis://ta:p/${SECRET}@h:6379/0` },
      { TA_REDIS_URL: `redis://ta:p@${SECRET}@h:6379/x` },
    ];
    for (const env of cases) {
      assert.throws(() => loadConfig('authority', { env }), (err: unknown) => {
        assert.ok(isTokenAuthorityError(err));
        assert.ok(!err.message.includes(SECRET), err.message);
        return true;
      }, JSON.stringify(env));
    }
    assert.throws(
      () => loadConfig('sidecar', { env: { TA_AUTHORITY_URL: `gopher://u:${SECRET}@a`, TA_REDIS_URL: 'redis://h', TA_ISSUER: 'https://i', TA_AUDIENCE: '*' } }),
      (err: unknown) => isTokenAuthorityError(err) && !err.message.includes(SECRET) && /TA_AUTHORITY_URL.*got "gopher:\/\/u:\*\*\*@a"/.test(err.message),
    );
  });
});
