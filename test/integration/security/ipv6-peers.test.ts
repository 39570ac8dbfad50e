/**
 * IPv6 callers at a real authority bound to [::1] and to [::]: grpc-js reports an IPv6 peer as
 * "::1:45678" (no brackets), so the address must come from the connection, not from a parse that
 * keeps the port. Every connection from one address shares one rate-limit bucket; ::1 and
 * ::ffff:127.0.0.1 (IPv4 through a dual-stack socket) are loopback.
 */
import assert from 'node:assert/strict';
import { Client, credentials, Server, ServerCredentials, status, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { callerOf } from '../../../src/grpc/caller.js';
import { startTestAuthority, type TestAuthority } from '../../helpers/authority.js';
import { authorityClient, expectStatus, type AuthorityClient } from '../../helpers/grpc-client.js';
import { standardPki } from '../../helpers/pki.js';
import { writePolicy } from './security-fixtures.js';

/** A client with its own connection (grpc-js would otherwise share one between equal clients). */
const ownConnection = (target: string) => authorityClient(target, { channelOptions: { 'grpc.use_local_subchannel_pool': 1 } });

describe('IPv6 peers: an authority bound to [::1] (development mode)', () => {
  let ta: TestAuthority;
  const clients: AuthorityClient[] = [];
  const connect = () => {
    const c = ownConnection(`[::1]:${ta.running.grpcPort}`);
    clients.push(c);
    return c;
  };
  before(async () => {
    // Per hour, so nothing refills while the test runs.
    ta = await startTestAuthority({ TA_GRPC_ADDR: '[::1]:0', TA_RATE_LIMIT_ISSUE: '2/h' });
  });
  after(async () => {
    for (const c of clients) c.close();
    await ta?.close();
  });

  it('treats ::1 as loopback: the development policy lets it Issue', async () => {
    const issued = await connect().issue({ subject: 'v6', audience: ['orders'] });
    assert.ok(issued.accessToken);
  });

  it('shares one rate-limit bucket between every connection from ::1, named without a port', async () => {
    // The first test spent one token of the burst of 2; each call below is a new connection (a new port).
    await connect().issue({ subject: 'v6', audience: ['orders'] });
    await expectStatus(connect().issue({ subject: 'v6', audience: ['orders'] }), status.RESOURCE_EXHAUSTED, /for caller ::1 \(/);
    await expectStatus(connect().issue({ subject: 'v6', audience: ['orders'] }), status.RESOURCE_EXHAUSTED, /for caller ::1 \(/);
  });
});

describe('IPv6 peers: an authority bound to [::] (dual stack, mutual TLS, loopback privileged)', () => {
  let pki: ReturnType<typeof standardPki>;
  let ta: TestAuthority;
  const clients: AuthorityClient[] = [];
  /** A mutual-TLS client of host:port on its own connection; by default the stranger (valid, listed nowhere: only the loopback rule lets it Issue). */
  const connect = (host: string, cert = pki.stranger) => {
    const c = authorityClient(`${host}:${ta.running.grpcPort}`, {
      credentials: credentials.createSsl(pki.ca.certPem, cert.keyPem, cert.certPem),
      channelOptions: { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost', 'grpc.use_local_subchannel_pool': 1 },
    });
    clients.push(c);
    return c;
  };
  before(async () => {
    pki = standardPki();
    ta = await startTestAuthority({
      TA_GRPC_ADDR: '[::]:0',
      TA_TLS_CERT: pki.server.cert,
      TA_TLS_KEY: pki.server.key,
      TA_TLS_CLIENT_CA: pki.ca.cert,
      TA_CLIENT_POLICY: writePolicy(pki.pki.dir, { version: 1, clients: {}, loopbackIsPrivileged: true }),
      TA_RATE_LIMIT_REVOKE: '2/h',
    });
  });
  after(async () => {
    for (const c of clients) c.close();
    await ta?.close();
    pki?.cleanup();
  });

  it('treats ::1 and IPv4 127.0.0.1 (seen as ::ffff:127.0.0.1) as loopback', async () => {
    assert.ok((await connect('[::1]').issue({ subject: 'a', audience: ['orders'] })).accessToken);
    assert.ok((await connect('127.0.0.1').issue({ subject: 'a', audience: ['orders'] })).accessToken);
  });

  it('keys buckets by address (IPv4-mapped shown as IPv4) when the certificate names no identity', async () => {
    const anon = (host: string) => connect(host, pki.anonymous);
    const revoke = (c: AuthorityClient) => c.revoke({ target: { $case: 'sessionId', sessionId: 'none' } }).catch((e: { code: number }) => {
      if (e.code !== status.NOT_FOUND && e.code !== status.OK) throw e;
    });
    await revoke(anon('127.0.0.1'));
    await revoke(anon('127.0.0.1'));
    await expectStatus(anon('127.0.0.1').revoke({ target: { $case: 'sessionId', sessionId: 'none' } }), status.RESOURCE_EXHAUSTED, /for caller 127\.0\.0\.1 \(/);
    // ::1 is another address: its own bucket, shared by its connections.
    await revoke(anon('[::1]'));
    await revoke(anon('[::1]'));
    await expectStatus(anon('[::1]').revoke({ target: { $case: 'sessionId', sessionId: 'none' } }), status.RESOURCE_EXHAUSTED, /for caller ::1 \(/);
  });
});


describe('callerOf on a bare grpc-js server bound to [::1]', () => {
  it('reads the address from the connection (grpc-js exposes it), not from the peer string', async () => {
    const seen: Array<{ viaConnection: boolean; caller: ReturnType<typeof callerOf> }> = [];
    const server = new Server();
    const id = (b: Buffer) => b;
    server.addService(
      { echo: { path: '/t.T/Echo', requestStream: false, responseStream: false, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id } },
      {
        echo: (call: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) => {
          const inner = (call as unknown as { call?: { getConnectionInfo?: () => { remoteAddress?: string } } }).call;
          seen.push({ viaConnection: typeof inner?.getConnectionInfo === 'function' && inner.getConnectionInfo().remoteAddress === '::1', caller: callerOf(call) });
          cb(null, Buffer.alloc(0));
        },
      },
    );
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('[::1]:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    const client = new Client(`[::1]:${port}`, credentials.createInsecure());
    try {
      await new Promise<void>((resolve, reject) => client.makeUnaryRequest('/t.T/Echo', id, id, Buffer.alloc(0), (e) => (e ? reject(e) : resolve())));
      assert.equal(seen.length, 1);
      assert.ok(seen[0]!.viaConnection, 'the installed grpc-js still exposes the connection under ServerUnaryCall (callerOf falls back to parsing getPeer() otherwise)');
      assert.match(seen[0]!.caller.peer, /^::1:\d+$/, 'grpc-js reports IPv6 peers without brackets');
      assert.equal(seen[0]!.caller.address, '::1');
      assert.equal(seen[0]!.caller.loopback, true);
    } finally {
      client.close();
      server.forceShutdown();
    }
  });
});
