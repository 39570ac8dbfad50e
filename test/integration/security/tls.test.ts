import assert from 'node:assert/strict';
import { credentials, status } from '@grpc/grpc-js';
import { decodeJwt } from 'jose';
import { startTestAuthority, type TestAuthority } from '../../helpers/authority.js';
import { authorityClient, expectStatus, type AuthorityClient } from '../../helpers/grpc-client.js';
import { standardPki } from '../../helpers/pki.js';
import { TEST_POLICY, tlsClient, writePolicy } from './security-fixtures.js';

describe('gRPC over TLS (server certificate only)', () => {
  let pki: ReturnType<typeof standardPki>;
  let ta: TestAuthority;
  const clients: AuthorityClient[] = [];
  const track = (c: AuthorityClient) => (clients.push(c), c);
  before(async () => {
    pki = standardPki();
    ta = await startTestAuthority({ TA_TLS_CERT: pki.server.cert, TA_TLS_KEY: pki.server.key });
  });
  after(async () => {
    for (const c of clients) c.close();
    await ta?.close();
    pki?.cleanup();
  });

  it('serves a TLS client that trusts the CA: Issue (loopback, development policy) and Verify', async () => {
    const c = track(tlsClient(ta.running.grpcPort, pki.ca));
    const issued = await c.issue({ subject: 'alice', audience: ['orders'], scopes: ['read'] });
    const v = await c.verify({ token: issued.accessToken, audience: 'orders' });
    assert.equal(v.valid, true, v.detail);
    assert.equal(v.claims?.subject, 'alice');
  });

  it('refuses a plaintext client (UNAVAILABLE: no TLS handshake)', async () => {
    const c = track(authorityClient(ta.running.grpcPort, { deadlineMs: 3000 }));
    await expectStatus(c.getJwks(), status.UNAVAILABLE);
  });

  it('is refused by a client that does not trust its CA (UNAVAILABLE)', async () => {
    const c = track(tlsClient(ta.running.grpcPort, pki.rogue, undefined, 3000));
    // rogue is a leaf of another CA: trusting it as a root does not make the server's chain valid.
    await expectStatus(c.getJwks(), status.UNAVAILABLE);
  });

  it('without client certificates, a caller has no identity: the development policy still decides by address', async () => {
    const c = track(tlsClient(ta.running.grpcPort, pki.ca, pki.login));
    const issued = await c.issue({ subject: 'bob', audience: ['orders'] });
    assert.equal(decodeJwt(issued.accessToken).client_id, 'token-authority', 'a certificate the server did not ask for is not an identity');
  });
});

describe('mutual TLS: the handshake', () => {
  let pki: ReturnType<typeof standardPki>;
  let ta: TestAuthority;
  const clients: AuthorityClient[] = [];
  const track = (c: AuthorityClient) => (clients.push(c), c);
  before(async () => {
    pki = standardPki();
    ta = await startTestAuthority({
      TA_TLS_CERT: pki.server.cert,
      TA_TLS_KEY: pki.server.key,
      TA_TLS_CLIENT_CA: pki.ca.cert,
      TA_CLIENT_POLICY: writePolicy(pki.pki.dir, TEST_POLICY),
    });
  });
  after(async () => {
    for (const c of clients) c.close();
    await ta?.close();
    pki?.cleanup();
  });

  it('accepts a client certificate signed by TA_TLS_CLIENT_CA', async () => {
    const c = track(tlsClient(ta.running.grpcPort, pki.ca, pki.login));
    const jwks = await c.getJwks();
    assert.ok(jwks.keys.length > 0);
  });

  it('rejects a client without a certificate, even for Verify (UNAVAILABLE: the handshake fails)', async () => {
    const c = track(tlsClient(ta.running.grpcPort, pki.ca, undefined, 3000));
    await expectStatus(c.verify({ token: 'x' }), status.UNAVAILABLE);
  });

  it('rejects a certificate from another CA, whatever identity it claims (UNAVAILABLE)', async () => {
    const c = track(tlsClient(ta.running.grpcPort, pki.ca, pki.rogue, 3000));
    await expectStatus(c.issue({ subject: 'mallory', audience: ['orders'] }), status.UNAVAILABLE);
  });

  it('rejects a plaintext client', async () => {
    const c = track(authorityClient(ta.running.grpcPort, { credentials: credentials.createInsecure(), deadlineMs: 3000 }));
    await expectStatus(c.getJwks(), status.UNAVAILABLE);
  });
});
