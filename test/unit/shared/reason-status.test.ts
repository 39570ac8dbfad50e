import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { VerifyReasons } from '../../../src/shared/claims.js';
import { GrpcDenialCode, REASON_STATUS, type DenialReason } from '../../../src/shared/reason-status.js';
import { httpDenial } from '../../../src/sidecar/authz-answer.js';
import { denyResponse } from '../../../src/sidecar/ext-authz.js';
import { statusForReason } from '../../../src/verifier/grpc/require-token.js';

const ALL: readonly DenialReason[] = [...VerifyReasons, 'MISSING_TOKEN'];

describe('verify reason → gRPC and HTTP status: one table (shared/reason-status.ts)', () => {
  it('has a row for every reason, and its gRPC codes are the gRPC specification\'s', () => {
    assert.deepEqual(Object.keys(REASON_STATUS).sort(), [...ALL].sort());
    for (const [name, code] of Object.entries(GrpcDenialCode)) assert.equal(code, status[name as keyof typeof status], name);
  });

  it('requireToken, ext_authz Check (its status and its denied HTTP response) and forward-auth agree for every reason', () => {
    for (const reason of ALL) {
      const row = REASON_STATUS[reason];
      const check = denyResponse(reason, 'detail', ['orders:read']);
      const http = httpDenial(reason, 'detail', ['orders:read']);
      assert.equal(statusForReason(reason), row.grpc, `requireToken ${reason}`);
      assert.equal(check.status?.code, row.grpc, `ext_authz status ${reason}`);
      assert.equal(check.httpResponse?.$case === 'deniedResponse' && check.httpResponse.deniedResponse.status?.code, row.http, `ext_authz HTTP ${reason}`);
      assert.equal(http.status, row.http, `forward-auth HTTP ${reason}`);
      assert.equal(http.error, row.error, `RFC 6750 error ${reason}`);
    }
  });

  it('STALE is UNAVAILABLE / 503 with Retry-After everywhere: the verifier is behind, the token may be fine', () => {
    assert.equal(statusForReason('STALE'), status.UNAVAILABLE);
    const check = denyResponse('STALE', 'revocation state is stale');
    assert.equal(check.status?.code, status.UNAVAILABLE);
    const denied = check.httpResponse?.$case === 'deniedResponse' ? check.httpResponse.deniedResponse : undefined;
    assert.equal(denied?.status?.code, 503);
    assert.ok(denied?.headers.some((h) => h.header?.key === 'retry-after' && h.header.value === '1'));
    assert.equal(httpDenial('STALE', 'x').headers['retry-after'], '1');
  });

  it('MISSING_SCOPE is PERMISSION_DENIED / 403 insufficient_scope naming the scopes; no token is a bare challenge; the rest UNAUTHENTICATED / 401', () => {
    assert.equal(statusForReason('MISSING_SCOPE'), status.PERMISSION_DENIED);
    assert.equal(httpDenial('MISSING_SCOPE', 'x', ['a', 'b']).headers['www-authenticate'], 'Bearer error="insufficient_scope", error_description="MISSING_SCOPE", scope="a b"');
    assert.equal(httpDenial('MISSING_TOKEN', 'x').headers['www-authenticate'], 'Bearer');
    for (const reason of ALL.filter((r) => !['MISSING_SCOPE', 'STALE'].includes(r))) {
      assert.equal(statusForReason(reason), status.UNAUTHENTICATED, reason);
      assert.equal(httpDenial(reason, 'x').status, 401, reason);
      assert.equal(httpDenial(reason, 'x').headers['retry-after'], undefined, reason);
    }
  });
});
