/**
 * Typed certificate identities over real mutual TLS: a policy key with ":" names a SAN URI, any
 * other key a SAN DNS name (any case) or the CN of a certificate without any SAN.
 */
import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { decodeJwt } from 'jose';
import { startTestAuthority, type TestAuthority } from '../../helpers/authority.js';
import { expectStatus, type AuthorityClient } from '../../helpers/grpc-client.js';
import { standardPki } from '../../helpers/pki.js';
import { TEST_POLICY, tlsClient, writePolicy } from './security-fixtures.js';

describe('caller identity: typed certificate identities under a client policy', () => {
  let pki: ReturnType<typeof standardPki>;
  let ta: TestAuthority;
  const clients: AuthorityClient[] = [];
  let client: (name: string, options: { cn?: string; san?: string[] }) => AuthorityClient;

  before(async () => {
    pki = standardPki();
    ta = await startTestAuthority({
      TA_TLS_CERT: pki.server.cert,
      TA_TLS_KEY: pki.server.key,
      TA_TLS_CLIENT_CA: pki.ca.cert,
      TA_CLIENT_POLICY: writePolicy(pki.pki.dir, TEST_POLICY),
      TA_RATE_LIMIT_ISSUE: 'off',
      TA_RATE_LIMIT_REVOKE: 'off',
    });
    client = (name, options) => {
      const c = tlsClient(ta.running.grpcPort, pki.ca, pki.ca.issue(name, options));
      clients.push(c);
      return c;
    };
  });
  after(async () => {
    for (const c of clients) c.close();
    await ta?.close();
    pki?.cleanup();
  });

  it('a SAN-less certificate whose CN spells a listed URI does not get that URI\'s grant', async () => {
    const forged = client('cn-spiffe', { cn: 'spiffe://corp/login' });
    await expectStatus(forged.issue({ subject: 'alice', audience: ['orders'] }), status.PERMISSION_DENIED, /may not issue; allowed: none/);
    await expectStatus(forged.revoke({ target: { $case: 'sessionId', sessionId: 'x' } }), status.PERMISSION_DENIED);
    // The genuine SAN URI still holds it.
    const issued = await tlsClient(ta.running.grpcPort, pki.ca, pki.login).issue({ subject: 'alice', audience: ['orders'] });
    assert.equal(decodeJwt(issued.accessToken).client_id, 'spiffe://corp/login');
  });

  it('a CN beside an email or IP SAN is not an identity: UNAUTHENTICATED', async () => {
    const withEmail = client('cn-email', { cn: 'ops-cli.corp.internal', san: ['email:ops@corp.example'] });
    await expectStatus(withEmail.revoke({ target: { $case: 'subject', subject: 'alice' } }), status.UNAUTHENTICATED, /presented none/);
    const withIp = client('cn-ip', { cn: 'ops-cli.corp.internal', san: ['IP:10.9.8.7'] });
    await expectStatus(withIp.revoke({ target: { $case: 'subject', subject: 'alice' } }), status.UNAUTHENTICATED, /presented none/);
  });

  it('a SAN DNS name matches a name key without regard to case; a SAN-less CN still matches it', async () => {
    const dns = client('dns-upper', { san: ['DNS:OPS-CLI.Corp.Internal'] });
    await dns.revoke({ target: { $case: 'subject', subject: 'alice' } });
    const cnOnly = client('cn-only', { cn: 'ops-cli.corp.internal' });
    await cnOnly.revoke({ target: { $case: 'subject', subject: 'alice' } });
  });

  it('a SAN DNS name never matches a URI key, nor a SAN URI a name key', async () => {
    const dnsAsUri = client('dns-uri', { san: ['DNS:spiffe.corp'] });
    await expectStatus(dnsAsUri.issue({ subject: 'a', audience: ['orders'] }), status.PERMISSION_DENIED);
    const uriAsName = client('uri-name', { san: ['URI:ops-cli.corp.internal'] });
    await expectStatus(uriAsName.revoke({ target: { $case: 'subject', subject: 'a' } }), status.PERMISSION_DENIED);
  });
});
