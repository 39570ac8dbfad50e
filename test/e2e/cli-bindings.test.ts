import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { decodeJwt } from 'jose';
import { startTestAuthority, type TestAuthority } from '../helpers/authority.js';
import { runCli } from '../helpers/cli-process.js';
import { forgeDpopProof, generateDpopKey, type DpopKey } from '../helpers/dpop-forge.js';
import { createPki, type CertFiles, type Pki } from '../helpers/pki.js';

/** The operator CLI issues and verifies sender-constrained tokens against a real authority. */
describe('token-authority issue/verify with bindings (real CLI processes)', function () {
  this.timeout(30_000);
  let ta: TestAuthority;
  let pki: Pki;
  let cert: CertFiles;
  let key: DpopKey;
  before(async () => {
    ta = await startTestAuthority();
    pki = createPki();
    cert = pki.createCa('cli-ca').issue('cli-client', { cn: 'cli-client' });
    key = await generateDpopKey('ES256');
  });
  after(async () => {
    await ta?.close();
    pki?.cleanup();
  });

  const cli = async (args: string[]) => {
    const p = runCli([...args, '--grpc-addr', `127.0.0.1:${ta.running.grpcPort}`]);
    const code = await p.exited;
    return { code, out: p.stdout().trim() ? (JSON.parse(p.stdout()) as Record<string, unknown>) : {}, err: p.stderr() };
  };

  it('issue --x5t-s256 binds to a certificate; verify --client-cert checks it', async () => {
    const x5t = createHash('sha256').update(new X509Certificate(cert.certPem).raw).digest('base64url');
    const issued = await cli(['issue', '--subject', 'ops', '--audience', 'orders', '--x5t-s256', x5t]);
    assert.equal(issued.code, 0, issued.err);
    const token = issued.out.accessToken as string;
    assert.deepEqual(decodeJwt(token).cnf, { 'x5t#S256': x5t });
    const ok = await cli(['verify', token, '--client-cert', cert.cert]);
    assert.equal(ok.out.valid, true, JSON.stringify(ok.out));
    const without = await cli(['verify', token]);
    assert.equal(without.out.reason, 'VERIFY_FAILURE_REASON_BINDING_MISMATCH');
  });

  it('issue --jkt binds to a DPoP key; verify --dpop-proof/--http-method/--http-uri checks the proof', async () => {
    const issued = await cli(['issue', '--subject', 'ops', '--audience', 'orders', '--jkt', key.jkt]);
    assert.equal(issued.code, 0, issued.err);
    const token = issued.out.accessToken as string;
    assert.deepEqual(decodeJwt(token).cnf, { jkt: key.jkt });
    const uri = 'https://api.test/orders';
    const ok = await cli(['verify', token, '--dpop-proof', forgeDpopProof({ key, method: 'GET', uri, accessToken: token }), '--http-method', 'GET', '--http-uri', uri]);
    assert.equal(ok.out.valid, true, JSON.stringify(ok.out));
    const wrong = await cli(['verify', token, '--dpop-proof', forgeDpopProof({ key, method: 'GET', uri, accessToken: token }), '--http-method', 'POST', '--http-uri', uri]);
    assert.equal(wrong.out.reason, 'VERIFY_FAILURE_REASON_INVALID_DPOP_PROOF');
    const bad = await cli(['issue', '--subject', 'ops', '--audience', 'orders', '--jkt', 'short']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.err, /confirmation\.jkt/);
  });
});
