import assert from 'node:assert/strict';
import { ErrorCodes, TokenAuthorityError, errorMessage } from '../../../src/shared/errors.js';

describe('TokenAuthorityError', () => {
  it('is recognised with instanceof across two loaded copies of the package, and nothing else is', async () => {
    // A second module instance of the same file: what two installed copies of the package give.
    const copy = (await import(new URL('../../../src/shared/errors.js?second-copy', import.meta.url).href)) as typeof import('../../../src/shared/errors.js');
    assert.notEqual(copy.TokenAuthorityError, TokenAuthorityError, 'really another class');
    const foreign = new copy.TokenAuthorityError(copy.ErrorCodes.REFRESH_REUSED, 'from the other copy');
    assert.ok(foreign instanceof TokenAuthorityError);
    assert.ok(new TokenAuthorityError(ErrorCodes.INTERNAL, 'x') instanceof copy.TokenAuthorityError);
    assert.equal(foreign.code, 'ERR_REFRESH_REUSED');
    assert.ok(!(new Error('plain') instanceof TokenAuthorityError));
    assert.ok(!(Object.assign(new Error('look-alike'), { code: 'ERR_INTERNAL', name: 'TokenAuthorityError' }) instanceof TokenAuthorityError));
    assert.ok(!((null as unknown as object) instanceof TokenAuthorityError));
  });
});

describe('errorMessage (the one way a thrown value becomes text)', () => {
  it('is the message of an Error (of any class) and String() of anything else', () => {
    assert.equal(errorMessage(new Error('boom')), 'boom');
    assert.equal(errorMessage(new TokenAuthorityError(ErrorCodes.KEY, 'bad key')), 'bad key');
    assert.equal(errorMessage('plain text'), 'plain text');
    assert.equal(errorMessage(42), '42');
    assert.equal(errorMessage(undefined), 'undefined');
    assert.equal(errorMessage({ code: 'ECONNREFUSED' }), '[object Object]');
  });
});
