import assert from 'node:assert/strict';
import { audited, auditOf, withAudit } from '../../../src/authority/token-authority.js';
import { ErrorCodes, TokenAuthorityError } from '../../../src/shared/errors.js';

describe('audited: an operation\'s audit fields onto the access line of its call', () => {
  it('adds the fields of a result and returns the result', async () => {
    const line: Record<string, unknown> = { grant: 'refresh_token' };
    const result = await audited(line, Promise.resolve({ result: 42, audit: { sub: 'alice', sid: 's1', jti: 'j1', kid: 'k1' } }));
    assert.equal(result, 42);
    assert.deepEqual(line, { grant: 'refresh_token', sub: 'alice', sid: 's1', jti: 'j1', kid: 'k1' });
  });

  it('adds the fields a refusal carries and rethrows the same error; an error without any adds nothing', async () => {
    const refused = withAudit(new TokenAuthorityError(ErrorCodes.REFRESH_REUSED, 'reused'), { sid: 's1', reuse: true, seq: 7 });
    assert.deepEqual(auditOf(refused), { sid: 's1', reuse: true, seq: 7 });
    const line: Record<string, unknown> = {};
    await assert.rejects(audited(line, Promise.reject(refused)), (err) => err === refused);
    assert.deepEqual(line, { sid: 's1', reuse: true, seq: 7 });
    const plain: Record<string, unknown> = {};
    await assert.rejects(audited(plain, Promise.reject(new Error('boom'))), /boom/);
    assert.deepEqual(plain, {});
    assert.equal(auditOf('not an object'), undefined);
  });
});
