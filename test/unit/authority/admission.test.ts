/**
 * admitIssue on its own: the order of its checks (who may call before what is asked), what it
 * normalises, and the client_id it picks. The grant rules through TokenAuthority and a policy file
 * are in token-authority.test.ts; these pin the function the domain delegates to.
 */
import assert from 'node:assert/strict';
import { admitIssue, createLoopbackPolicy, type AccessPolicy, type IssueGrant } from '../../../src/authority/admission.js';
import { ErrorCodes, TokenAuthorityError } from '../../../src/shared/errors.js';
import type { Principal } from '../../../src/shared/principal.js';

const remote: Principal = { peer: '10.0.0.7:4242', address: '10.0.0.7', loopback: false, identities: [] };
const client: Principal = { peer: '10.0.0.8:1', address: '10.0.0.8', loopback: false, identities: [{ kind: 'uri', value: 'spiffe://corp/login' }] };
const request = { subject: 'user-1', audience: ['orders'], scopes: ['read'], extraClaims: {} };

function policyGranting(grant: IssueGrant): AccessPolicy & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    authorize: (_p, action) => void calls.push(`authorize ${action}`),
    issueGrant: () => (calls.push('issueGrant'), grant),
  };
}

function refusal(fn: () => unknown, code: string, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof TokenAuthorityError, String(err));
    assert.equal(err.code, code, err.message);
    assert.match(err.message, message);
    return true;
  });
}

describe('admitIssue', () => {
  it('asks the policy first: a caller who may not issue is refused before its input is read', () => {
    refusal(() => admitIssue(createLoopbackPolicy({ insecure: false }), remote, { ...request, subject: '' }, []), ErrorCodes.PERMISSION_DENIED, /issue is privileged/);
    const policy = policyGranting({});
    admitIssue(policy, client, request, []);
    assert.deepEqual(policy.calls, ['authorize issue', 'issueGrant']);
  });

  it('returns the request checked and normalised: repeated audiences and scopes once, in order', () => {
    const admitted = admitIssue(policyGranting({}), client, { ...request, audience: ['orders', 'billing', 'orders'], scopes: ['read', 'read', 'write'] }, []);
    assert.deepEqual(admitted.audience, ['orders', 'billing']);
    assert.deepEqual(admitted.scopes, ['read', 'write']);
    assert.equal(admitted.subject, 'user-1');
  });

  it('refuses an audience this authority does not serve before asking the grant about it', () => {
    refusal(() => admitIssue(policyGranting({ audiences: ['orders'] }), client, { ...request, audience: ['billing'] }, ['orders']), ErrorCodes.PERMISSION_DENIED, /audience "billing" is not allowed on this authority/);
    refusal(() => admitIssue(policyGranting({ audiences: ['orders'] }), client, { ...request, audience: ['billing'] }, []), ErrorCodes.PERMISSION_DENIED, /client spiffe:\/\/corp\/login may not issue tokens for audience "billing"/);
  });

  it('client_id: the caller\'s own identity, else one the grant lists, else the authority itself', () => {
    assert.equal(admitIssue(policyGranting({}), client, request, []).clientId, 'spiffe://corp/login');
    assert.equal(admitIssue(policyGranting({ clientIds: ['web', 'mobile'] }), client, request, []).clientId, 'web');
    assert.equal(admitIssue(policyGranting({}), remote, request, []).clientId, 'token-authority');
    refusal(() => admitIssue(policyGranting({ clientIds: ['web'] }), client, { ...request, clientId: 'mobile' }, []), ErrorCodes.PERMISSION_DENIED, /may not issue tokens with client_id "mobile"; allowed: web/);
  });

  it('hands back the grant it checked against, for the TTL cap the session keeps', () => {
    assert.deepEqual(admitIssue(policyGranting({ maxAccessTtlMs: 300_000 }), client, request, []).grant, { maxAccessTtlMs: 300_000 });
  });
});
