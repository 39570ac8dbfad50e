import assert from 'node:assert/strict';
import { warnIfPlaintextOAuth } from '../../../src/authority/http-caller.js';
import { OAuthError, oauthErrorAnswer } from '../../../src/authority/oauth-errors.js';
import { ErrorCodes, TokenAuthorityError } from '../../../src/shared/errors.js';
import { recordingLogger } from '../../helpers/recording-logger.js';

describe('OAuth error answers (the one table)', () => {
  const answer = (err: unknown, authorization?: string) => {
    const logger = recordingLogger();
    const a = oauthErrorAnswer(err, logger, 'token', authorization);
    return { ...a, json: JSON.parse(a.body) as { error: string; error_description: string }, logged: logger.lines };
  };

  it('maps authority errors to RFC 6749 §5.2 codes and statuses', () => {
    const cases: Array<[string, string, number]> = [
      [ErrorCodes.REFRESH_REUSED, 'invalid_grant', 400],
      [ErrorCodes.SESSION_REVOKED, 'invalid_grant', 400],
      [ErrorCodes.UNAUTHENTICATED, 'invalid_client', 401],
      [ErrorCodes.PERMISSION_DENIED, 'unauthorized_client', 400],
      [ErrorCodes.INVALID_ARGUMENT, 'invalid_request', 400],
      [ErrorCodes.STORE_UNAVAILABLE, 'temporarily_unavailable', 503],
      [ErrorCodes.RATE_LIMITED, 'temporarily_unavailable', 429],
    ];
    for (const [code, error, status] of cases) {
      const a = answer(new TokenAuthorityError(code as never, `because ${code}`));
      assert.equal(a.json.error, error, code);
      assert.equal(a.status, status, code);
      assert.equal(a.json.error_description, `because ${code}`);
      assert.equal(a.headers!['cache-control'], 'no-store');
      assert.equal(a.headers!.pragma, 'no-cache');
    }
  });

  it('keeps internal messages on the server', () => {
    const a = answer(new TokenAuthorityError(ErrorCodes.KEY, 'key file /etc/secret unreadable'));
    assert.equal(a.status, 500);
    assert.deepEqual(a.json, { error: 'server_error', error_description: 'internal error (logged on the server)' });
    assert.equal(a.logged.length, 1);
    assert.equal(answer(new Error('boom')).json.error, 'server_error');
  });

  it('challenges only a client that tried the Authorization header, with its scheme', () => {
    assert.equal(answer(new OAuthError('invalid_client', 401, 'no certificate')).headers!['www-authenticate'], undefined);
    assert.equal(answer(new OAuthError('invalid_client', 401, 'no certificate'), 'Basic abc').headers!['www-authenticate'], 'Basic realm="token-authority", error="invalid_client"');
    assert.equal(answer(new OAuthError('invalid_client', 401, 'x'), '"bad scheme" x').headers!['www-authenticate'], undefined);
  });

  it('keeps error_description within the characters RFC 6749 allows', () => {
    assert.equal(answer(new OAuthError('invalid_request', 400, 'say "hi"\\\nnow é')).json.error_description, 'say  hi   now  ');
  });
});

describe('plaintext OAuth warning', () => {
  const addr = (host: string) => ({ host, port: 8080, text: `${host}:8080` });
  it('warns when the endpoints are served over plain HTTP beyond loopback, only then', () => {
    const logger = recordingLogger();
    warnIfPlaintextOAuth({ httpAddr: addr('127.0.0.1') }, logger);
    warnIfPlaintextOAuth({ httpAddr: addr('0.0.0.0'), tlsCert: '/etc/ta/server.pem' }, logger);
    assert.equal(logger.lines.length, 0);
    warnIfPlaintextOAuth({ httpAddr: addr('0.0.0.0') }, logger);
    assert.equal(logger.lines.length, 1);
    assert.equal(logger.lines[0]!.level, 'warn');
    assert.match(logger.lines[0]!.msg, /plaintext HTTP on a non-loopback address/);
  });
});
