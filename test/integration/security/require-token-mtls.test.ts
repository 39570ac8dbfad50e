import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { credentials, makeGenericClientConstructor, Metadata, Server, ServerCredentials, status, type ServiceDefinition, type ServiceError } from '@grpc/grpc-js';
import { createVerifier } from '../../../src/verifier/create-verifier.js';
import { requireToken } from '../../../src/verifier/grpc/require-token.js';
import { createStaticKeyResolver } from '../../../src/verifier/key-resolvers.js';
import { standardPki } from '../../helpers/pki.js';
import { accessPayload, forgeToken, generateTestKey } from '../../helpers/token-forge.js';

const ISSUER = 'https://issuer.test';
const raw = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
const SERVICE: ServiceDefinition = {
  whoAmI: { path: '/test.Orders/WhoAmI', requestStream: false, responseStream: false, requestSerialize: raw.serialize, requestDeserialize: raw.deserialize, responseSerialize: raw.serialize, responseDeserialize: raw.deserialize },
};

/** requireToken on a real grpc-js server over mutual TLS: an mTLS-bound token needs its certificate on the connection. */
describe('requireToken with mTLS-bound tokens (real grpc-js server, mutual TLS)', function () {
  this.timeout(20_000);
  const pki = standardPki();
  const key = generateTestKey('ES256');
  const thumbprint = (pem: Buffer) => createHash('sha256').update(new X509Certificate(pem).raw).digest('base64url');
  const servers: Server[] = [];
  /** Port of the server requiring client certificates, and of one with server-side TLS only. */
  let mtlsPort: number;
  let tlsPort: number;
  before(async () => {
    const verifier = createVerifier({ issuer: ISSUER, keys: createStaticKeyResolver([key.verificationKey]) });
    const start = (requireClientCert: boolean) => {
      const server = new Server();
      servers.push(server);
      server.addService(SERVICE, { whoAmI: requireToken<Buffer, Buffer>(verifier, {}, (_call, cb, claims) => cb(null, Buffer.from(claims.subject))) });
      return new Promise<number>((resolve, reject) =>
        server.bindAsync('127.0.0.1:0', ServerCredentials.createSsl(pki.ca.certPem, [{ private_key: pki.server.keyPem, cert_chain: pki.server.certPem }], requireClientCert), (err, p) => (err ? reject(err) : resolve(p))));
    };
    mtlsPort = await start(true);
    tlsPort = await start(false);
  });
  after(() => {
    for (const s of servers) s.forceShutdown();
    pki.cleanup();
  });

  const Client = makeGenericClientConstructor(SERVICE, 'Orders');
  const ask = (token: string, client?: { keyPem: Buffer; certPem: Buffer }) =>
    new Promise<{ code: number; details: string }>((resolve) => {
      const c = new Client(`127.0.0.1:${client ? mtlsPort : tlsPort}`, credentials.createSsl(pki.ca.certPem, client?.keyPem ?? null, client?.certPem ?? null));
      const md = new Metadata();
      md.set('authorization', `Bearer ${token}`);
      (c as unknown as { whoAmI: (req: Buffer, md: Metadata, cb: (err: ServiceError | null, res?: Buffer) => void) => void }).whoAmI(Buffer.alloc(0), md, (err) => {
        c.close();
        resolve(err ? { code: err.code, details: err.details } : { code: status.OK, details: '' });
      });
    });

  it('accepted over a connection with the bound certificate; refused without one or with another', async () => {
    const token = forgeToken({ key, payload: accessPayload({ iss: ISSUER, cnf: { 'x5t#S256': thumbprint(pki.opsCli.certPem) } }) });
    assert.deepEqual(await ask(token, pki.opsCli), { code: status.OK, details: '' });
    const none = await ask(token);
    assert.equal(none.code, status.UNAUTHENTICATED);
    assert.match(none.details, /^BINDING_MISMATCH: .*none was presented/);
    const other = await ask(token, pki.login);
    assert.equal(other.code, status.UNAUTHENTICATED);
    assert.match(other.details, /^BINDING_MISMATCH: .*another client certificate/);
  });

  it('an unbound token is accepted with or without a client certificate', async () => {
    const token = forgeToken({ key, payload: accessPayload({ iss: ISSUER }) });
    assert.equal((await ask(token)).code, status.OK);
    assert.equal((await ask(token, pki.login)).code, status.OK);
  });

  it('a DPoP-bound token cannot be used over gRPC (no proof): BINDING_MISMATCH', async () => {
    const token = forgeToken({ key, payload: accessPayload({ iss: ISSUER, cnf: { jkt: thumbprint(pki.login.certPem) } }) });
    assert.match((await ask(token, pki.login)).details, /^BINDING_MISMATCH: .*no DPoP proof/);
  });
});
