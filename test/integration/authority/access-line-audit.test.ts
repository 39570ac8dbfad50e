/**
 * The audit fields TokenAuthority returns reach the access line of the call, over real gRPC and
 * the real OAuth endpoints: ids and flags, never a token.
 */
import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { startTestAuthority, type TestAuthority } from '../../helpers/authority.js';
import { expectStatus } from '../../helpers/grpc-client.js';
import { recordingLogger, type RecordingLogger } from '../../helpers/recording-logger.js';

describe('access lines carry the audit fields TokenAuthority returns', function () {
  this.timeout(20_000);
  let ta: TestAuthority;
  let logger: RecordingLogger;
  before(async () => {
    logger = recordingLogger();
    ta = await startTestAuthority({ TA_LOG_LEVEL: 'info', TA_REFRESH_GRACE: '0' }, {}, logger);
  });
  after(async () => {
    await ta?.close();
  });
  const last = (msg: string, key: string, value: string) => {
    const lines = logger.lines.filter((l) => l.msg === msg && l.fields[key] === value);
    assert.ok(lines.length > 0, `no ${msg} line with ${key}=${value}`);
    return lines[lines.length - 1]!.fields;
  };
  const noToken = (...tokens: string[]) => {
    const text = JSON.stringify(logger.lines);
    for (const t of tokens) assert.ok(!text.includes(t), 'a token reached a log line');
  };

  it('gRPC: Issue, Refresh, a refused reuse and Revoke', async () => {
    const a = await ta.client.issue({ subject: 'ada', audience: ['orders'] });
    assert.deepEqual(pick(last('rpc', 'method', 'Issue')), { sub: 'ada', sid: a.sessionId, jti: a.tokenId, kid: a.keyId });
    const b = await ta.client.refresh({ refreshToken: a.refreshToken });
    assert.deepEqual(pick(last('rpc', 'method', 'Refresh')), { sub: 'ada', sid: a.sessionId, jti: b.tokenId, kid: b.keyId });
    await expectStatus(ta.client.refresh({ refreshToken: a.refreshToken }), status.UNAUTHENTICATED, 'already used');
    const reuse = last('rpc', 'method', 'Refresh');
    assert.equal(reuse.reuse, true);
    assert.equal(reuse.sid, a.sessionId);
    assert.equal(reuse.sub, 'ada');
    assert.equal(typeof reuse.seq, 'number');
    const c = await ta.client.issue({ subject: 'bea', audience: ['orders'] });
    const r = await ta.client.revoke({ target: { $case: 'token', token: c.accessToken } });
    const line = last('rpc', 'method', 'Revoke');
    assert.deepEqual([line.sub, line.jti, line.seq], ['bea', c.tokenId, r.sequence]);
    noToken(a.accessToken, a.refreshToken, b.accessToken, b.refreshToken, c.accessToken, c.refreshToken);
  });

  it('HTTP: the token endpoint\'s refresh_token grant and the revocation endpoint', async () => {
    const a = await ta.client.issue({ subject: 'cid', audience: ['orders'] });
    const form = (body: Record<string, string>) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body).toString() });
    const res = await fetch(`${ta.httpBase}/oauth2/token`, form({ grant_type: 'refresh_token', refresh_token: a.refreshToken }));
    assert.equal(res.status, 200);
    const body = (await res.json()) as { access_token: string; refresh_token: string };
    const line = last('oauth', 'endpoint', 'token');
    assert.deepEqual([line.grant, line.sub, line.sid, typeof line.jti, typeof line.kid], ['refresh_token', 'cid', a.sessionId, 'string', 'string']);
    assert.equal((await fetch(`${ta.httpBase}/oauth2/revoke`, form({ token: body.refresh_token }))).status, 200);
    const revoked = last('oauth', 'endpoint', 'revoke');
    assert.equal(revoked.sid, a.sessionId);
    assert.equal(typeof revoked.seq, 'number');
    noToken(a.accessToken, a.refreshToken, body.access_token, body.refresh_token);
  });
});

function pick(fields: Record<string, unknown>): Record<string, unknown> {
  const { sub, sid, jti, kid } = fields;
  return { sub, sid, jti, kid };
}
