import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDocumentPolicy, createFilePolicy, parseClientPolicy } from '../../../src/authority/file-policy.js';
import type { CertificateIdentity, Principal } from '../../../src/shared/principal.js';
import { ErrorCodes, TokenAuthorityError } from '../../../src/shared/errors.js';
import { recordingLogger } from '../../helpers/recording-logger.js';

const EXAMPLE = {
  version: 1,
  clients: {
    'spiffe://corp/login': { issue: { audiences: ['orders', 'billing'], scopes: ['read', 'write'], maxAccessTtl: '15m' }, revoke: ['session'] },
    'ops-cli.corp.internal': { revoke: ['subject', 'session', 'token_id'] },
    'spiffe://corp/any': { issue: { audiences: ['*'], scopes: ['*'] } },
  },
  loopbackIsPrivileged: false,
};

/** Identities as a certificate asserts them: a value with ":" is a SAN URI, any other a SAN DNS name. */
const asserted = (identities: string[]): CertificateIdentity[] => identities.map((value) => ({ kind: value.includes(':') ? 'uri' : 'dns', value }));
const remote = (...identities: string[]): Principal => ({ peer: '10.0.0.7:4242', address: '10.0.0.7', loopback: false, identities: asserted(identities) });
const local = (...identities: string[]): Principal => ({ peer: '127.0.0.1:4242', address: '127.0.0.1', loopback: true, identities: asserted(identities) });

function thrown(fn: () => unknown): TokenAuthorityError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof TokenAuthorityError, `expected a TokenAuthorityError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a throw');
}

describe('client policy file: validation', () => {
  const parse = (doc: unknown) => parseClientPolicy(JSON.stringify(doc), '/etc/ta/policy.json');

  it('accepts the documented example', () => {
    const p = parse(EXAMPLE);
    assert.equal(p.clients.size, 3);
    assert.deepEqual(p.clients.get('spiffe://corp/login')?.issue, { audiences: ['orders', 'billing'], scopes: ['read', 'write'], maxAccessTtlMs: 900_000, clientIds: ['spiffe://corp/login'] });
    assert.deepEqual(p.clients.get('spiffe://corp/any')?.issue, { clientIds: ['spiffe://corp/any'] }, '"*" means any: no restriction in the grant but its own client_id');
    assert.equal(p.clients.get('ops-cli.corp.internal')?.issue, undefined);
    assert.equal(p.loopbackIsPrivileged, false);
  });

  it('names the file and the JSON path of every bad entry', () => {
    const err = thrown(() =>
      parse({
        version: 2,
        clients: {
          'spiffe://corp/login': { issue: { audiences: [], scopes: ['read'], maxAccessTtl: 'soon' }, revoke: ['subject', 'everything'] },
          ' padded': { revoke: [] },
          'ops': { revok: ['subject'] },
        },
      }),
    );
    assert.equal(err.code, ErrorCodes.CONFIG);
    const m = err.message;
    assert.match(m, /^client policy \/etc\/ta\/policy\.json is invalid \(\d+ problems\):/);
    assert.match(m, /- \$\.version: must be 1/);
    assert.match(m, /- \$\.clients\["spiffe:\/\/corp\/login"\]\.issue\.audiences: list at least one audience/);
    assert.match(m, /- \$\.clients\["spiffe:\/\/corp\/login"\]\.issue\.maxAccessTtl: "soon" is not a duration/);
    assert.match(m, /- \$\.clients\["spiffe:\/\/corp\/login"\]\.revoke\[1\]: /);
    assert.match(m, /- \$\.clients\[" padded"\]: a client identity must not have control characters or surrounding spaces/);
    assert.match(m, /- \$\.clients\.ops: .*revok/);
  });

  it('requires scopes to be listed (an empty list grants none; ["*"] grants any)', () => {
    assert.match(thrown(() => parse({ version: 1, clients: { a: { issue: { audiences: ['x'] } } } })).message, /\$\.clients\.a\.issue\.scopes: /);
    assert.deepEqual(parse({ version: 1, clients: { a: { issue: { audiences: ['x'], scopes: [] } } } }).clients.get('a')?.issue, { audiences: ['x'], scopes: [], clientIds: ['a'] });
  });

  it('limits client_id to the client\'s own identity unless clientIds lists others or "*"; extraClaims is an optional allow-list', () => {
    const issue = (extra: Record<string, unknown>) => parse({ version: 1, clients: { a: { issue: { audiences: ['x'], scopes: [], ...extra } } } }).clients.get('a')?.issue;
    assert.deepEqual(issue({}), { audiences: ['x'], scopes: [], clientIds: ['a'] });
    assert.deepEqual(issue({ clientIds: ['web', 'a'], extraClaims: ['tenant'] }), { audiences: ['x'], scopes: [], clientIds: ['web', 'a'], extraClaims: ['tenant'] });
    assert.deepEqual(issue({ clientIds: ['*'], extraClaims: ['*'] }), { audiences: ['x'], scopes: [] });
    assert.deepEqual(issue({ extraClaims: [] }), { audiences: ['x'], scopes: [], clientIds: ['a'], extraClaims: [] }, '[] allows no extra claim');
    assert.match(thrown(() => issue({ clientIds: [] })).message, /\$\.clients\.a\.issue\.clientIds: list at least one client_id/);
    assert.match(thrown(() => issue({ extraClaims: ['*', 'tenant'] })).message, /\$\.clients\.a\.issue\.extraClaims: /);
  });

  it('refuses "*" mixed with names', () => {
    assert.match(thrown(() => parse({ version: 1, clients: { a: { issue: { audiences: ['*', 'orders'], scopes: [] } } } })).message, /"\*" \(any\) must be the only entry/);
  });

  it('says when the file is not JSON', () => {
    assert.match(thrown(() => parseClientPolicy('{ "version": 1, ', '/p.json')).message, /^client policy \/p\.json is not valid JSON: /);
  });
});

describe('client policy: decisions', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ta-policy-'));
    path = join(dir, 'policy.json');
    writeFileSync(path, JSON.stringify(EXAMPLE));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('allows what an identity holds and grants its audiences, scopes and max TTL', () => {
    const p = createFilePolicy(path, recordingLogger());
    const login = remote('spiffe://corp/login');
    p.authorize(login, 'issue');
    p.authorize(login, 'revoke:session');
    assert.deepEqual(p.issueGrant(login), { audiences: ['orders', 'billing'], scopes: ['read', 'write'], maxAccessTtlMs: 900_000, clientIds: ['spiffe://corp/login'] });
    p.authorize(remote('ops-cli.corp.internal'), 'revoke:subject');
  });

  it('denies a missing right with PERMISSION_DENIED naming it and what the client may do', () => {
    const p = createFilePolicy(path, recordingLogger());
    const e1 = thrown(() => p.authorize(remote('spiffe://corp/login'), 'revoke:subject'));
    assert.equal(e1.code, ErrorCodes.PERMISSION_DENIED);
    assert.equal(e1.message, 'client spiffe://corp/login may not revoke:subject; allowed: issue, revoke:session');
    const e2 = thrown(() => p.authorize(remote('ops-cli.corp.internal'), 'issue'));
    assert.equal(e2.message, 'client ops-cli.corp.internal may not issue; allowed: revoke:subject, revoke:session, revoke:token_id');
  });

  it('denies an identity the policy does not list', () => {
    const e = thrown(() => createFilePolicy(path, recordingLogger()).authorize(remote('spiffe://corp/stranger'), 'revoke:token_id'));
    assert.equal(e.code, ErrorCodes.PERMISSION_DENIED);
    assert.match(e.message, /^client spiffe:\/\/corp\/stranger may not revoke:token_id; allowed: none/);
  });

  it('answers UNAUTHENTICATED when the caller presented no certificate identity, even on loopback', () => {
    const p = createFilePolicy(path, recordingLogger());
    for (const caller of [remote(), local()]) {
      const e = thrown(() => p.authorize(caller, 'issue'));
      assert.equal(e.code, ErrorCodes.UNAUTHENTICATED);
      assert.match(e.message, /^Issue requires a client certificate \(mutual TLS\)/);
    }
    assert.match(thrown(() => p.authorize(remote(), 'revoke:subject')).message, /^Revoke by subject requires a client certificate/);
  });

  it('uses the first of the caller\'s identities that the policy lists', () => {
    const p = createFilePolicy(path, recordingLogger());
    const caller = remote('spiffe://corp/unlisted', 'ops-cli.corp.internal');
    p.authorize(caller, 'revoke:subject');
    assert.equal(thrown(() => p.authorize(caller, 'issue')).message, 'client ops-cli.corp.internal may not issue; allowed: revoke:subject, revoke:session, revoke:token_id');
  });

  it('with loopbackIsPrivileged, loopback callers hold every right (and remote ones still do not)', () => {
    writeFileSync(path, JSON.stringify({ ...EXAMPLE, loopbackIsPrivileged: true }));
    const p = createFilePolicy(path, recordingLogger());
    p.authorize(local(), 'issue');
    p.authorize(local('spiffe://corp/stranger'), 'revoke:subject');
    assert.deepEqual(p.issueGrant(local()), {});
    assert.deepEqual(p.issueGrant(local('spiffe://corp/login')), EXAMPLE_LOGIN_GRANT, 'a listed identity keeps its own limits');
    assert.equal(thrown(() => p.authorize(remote('spiffe://corp/stranger'), 'issue')).code, ErrorCodes.PERMISSION_DENIED);
  });

  it('reload() swaps in a changed file and logs it', () => {
    const logger = recordingLogger();
    const p = createFilePolicy(path, logger);
    const stranger = remote('spiffe://corp/stranger');
    assert.throws(() => p.authorize(stranger, 'issue'));
    writeFileSync(path, JSON.stringify({ version: 1, clients: { 'spiffe://corp/stranger': { issue: { audiences: ['orders'], scopes: [] } } } }));
    assert.deepEqual(p.reload(), { ok: true, clients: 1 });
    p.authorize(stranger, 'issue');
    assert.throws(() => p.authorize(remote('spiffe://corp/login'), 'issue'), /may not issue/, 'rights not in the new file are gone');
    assert.ok(logger.lines.some((l) => l.level === 'info' && l.msg === 'client policy reloaded'));
  });

  it('reload() of a bad file logs an error and keeps the policy in force', () => {
    const logger = recordingLogger();
    const p = createFilePolicy(path, logger);
    writeFileSync(path, JSON.stringify({ version: 1, clients: { 'spiffe://corp/login': { revoke: ['all'] } } }));
    const r = p.reload();
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.error, /\$\.clients\["spiffe:\/\/corp\/login"\]\.revoke\[0\]/);
    p.authorize(remote('spiffe://corp/login'), 'issue');
    assert.equal(p.clientCount, 3);
    const line = logger.lines.find((l) => l.level === 'error');
    assert.ok(line, 'an error line');
    assert.match(line.msg, /previous policy stays in force/);
    rmSync(path);
    assert.equal(p.reload().ok, false, 'a vanished file is rejected too');
    p.authorize(remote('spiffe://corp/login'), 'issue');
  });

  it('refuses a missing file, and a file every user may write', () => {
    assert.match(thrown(() => createFilePolicy(join(dir, 'nope.json'), recordingLogger())).message, /^cannot read client policy .*nope\.json: ENOENT/);
    chmodSync(path, 0o666);
    assert.match(thrown(() => createFilePolicy(path, recordingLogger())).message, /is writable by every user/);
  });
});

const EXAMPLE_LOGIN_GRANT = { audiences: ['orders', 'billing'], scopes: ['read', 'write'], maxAccessTtlMs: 900_000, clientIds: ['spiffe://corp/login'] };

describe('client policy file: duplicate keys', () => {
  const parseText = (text: string) => parseClientPolicy(text, '/etc/ta/policy.json');

  it('refuses a client listed twice, naming its path (JSON.parse would keep the last silently)', () => {
    const text = `{"version":1,"clients":{
      "spiffe://corp/login":{"issue":{"audiences":["orders"],"scopes":["read"]}},
      "spiffe://corp/login":{"issue":{"audiences":["*"],"scopes":["*"]}}}}`;
    const e = thrown(() => parseText(text));
    assert.equal(e.code, ErrorCodes.CONFIG);
    assert.match(e.message, /\/etc\/ta\/policy\.json/);
    assert.match(e.message, /duplicate key \$\.clients\["spiffe:\/\/corp\/login"\]/);
  });

  it('refuses duplicates at any depth, also when spelled with escapes, and in objects inside arrays', () => {
    assert.match(thrown(() => parseText('{"version":1,"clients":{"a":{"revoke":["session"],"revoke":["subject"]}}}')).message, /duplicate key \$\.clients\.a\.revoke/);
    assert.match(thrown(() => parseText('{"version":1,"clients":{},"\\u0076ersion":1}')).message, /duplicate key \$\.version/);
    assert.match(thrown(() => parseText('{"version":1,"clients":{},"x":[1,{"k":[]},{"k":{},"k":2}]}')).message, /duplicate key \$\.x\[2\]\.k/);
  });

  it('accepts the same key in different objects, and strings that look like keys', () => {
    const p = parseText(`{ "version" : 1 , "clients" : {
      "a" : { "issue" : { "audiences" : [ "x" ] , "scopes" : [ ] } , "revoke" : [ "session" ] },
      "b\\"q,}:" : { "issue" : { "audiences" : [ "a" , "b" ] , "scopes" : [ "{\\"a\\":1,\\"a\\":2}" ] } } } }`);
    assert.equal(p.clients.size, 2);
  });
});

describe('client policy: typed identity matching', () => {
  const doc = parseClientPolicy(JSON.stringify(EXAMPLE), '/etc/ta/policy.json');
  const policy = createDocumentPolicy(() => doc);
  const typed = (...ids: Array<[CertificateIdentity['kind'], string]>): Principal => ({
    peer: '10.0.0.7:4242',
    address: '10.0.0.7',
    loopback: false,
    identities: ids.map(([kind, value]) => ({ kind, value })),
  });

  it('a CN never matches a URI key, whatever it spells', () => {
    assert.throws(() => policy.authorize(typed(['cn', 'spiffe://corp/login']), 'issue'), /may not issue; allowed: none/);
    policy.authorize(typed(['uri', 'spiffe://corp/login']), 'issue');
  });
  it('a name key matches a DNS SAN or a CN without regard to case; a URI key is exact', () => {
    policy.authorize(typed(['dns', 'OPS-cli.corp.INTERNAL']), 'revoke:subject');
    policy.authorize(typed(['cn', 'ops-cli.corp.internal']), 'revoke:subject');
    assert.throws(() => policy.authorize(typed(['uri', 'spiffe://corp/LOGIN']), 'issue'), /allowed: none/);
    assert.throws(() => policy.authorize(typed(['uri', 'ops-cli.corp.internal']), 'revoke:subject'), /allowed: none/);
    assert.throws(() => policy.authorize(typed(['dns', 'spiffe://corp/login']), 'issue'), /allowed: none/);
  });
  it('refuses two name keys that differ only in case', () => {
    const text = JSON.stringify({ version: 1, clients: { 'ops.corp': { revoke: ['session'] }, 'OPS.corp': { revoke: ['subject'] } } });
    assert.match(thrown(() => parseClientPolicy(text, '/p.json')).message, /\$\.clients\["ops\.corp"\] and \$\.clients\["OPS\.corp"\] are the same name/);
  });
});

describe('client policy: the introspect right (OAuth introspection endpoint)', () => {
  const doc = parseClientPolicy(
    JSON.stringify({ version: 1, clients: { 'spiffe://corp/gateway': { introspect: true }, 'spiffe://corp/login': { issue: { audiences: ['orders'], scopes: [] }, introspect: false } } }),
    'policy.json',
  );
  const policy = createDocumentPolicy(() => doc);

  it('is held only where the file says introspect: true', () => {
    policy.authorize(remote('spiffe://corp/gateway'), 'introspect');
    const e = thrown(() => policy.authorize(remote('spiffe://corp/login'), 'introspect'));
    assert.equal(e.code, ErrorCodes.PERMISSION_DENIED);
    assert.equal(e.message, 'client spiffe://corp/login may not introspect; allowed: issue');
    assert.equal(thrown(() => policy.authorize(remote('spiffe://corp/gateway'), 'issue')).message, 'client spiffe://corp/gateway may not issue; allowed: introspect');
  });

  it('needs a certificate identity', () => {
    const e = thrown(() => policy.authorize(remote(), 'introspect'));
    assert.equal(e.code, ErrorCodes.UNAUTHENTICATED);
    assert.match(e.message, /^Token introspection requires a client certificate/);
  });

  it('must be a boolean', () => {
    const e = thrown(() => parseClientPolicy(JSON.stringify({ version: 1, clients: { a: { introspect: 'yes' } } }), 'p.json'));
    assert.equal(e.code, ErrorCodes.CONFIG);
    assert.match(e.message, /\$\.clients\.a\.introspect: /);
  });
});
