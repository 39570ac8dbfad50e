import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { certificateRequirement, forwardedCertificateThumbprint, urlEncodedPem } from '../../../src/sidecar/client-certificate.js';
import { forwardedRequest } from '../../../src/sidecar/forward-auth.js';
import { httpDenial } from '../../../src/sidecar/authz-answer.js';
import { createPki, type Pki } from '../../helpers/pki.js';

describe('sidecar: the client certificate and the request as a proxy reports them', () => {
  let pki: Pki;
  let pem: string;
  let otherPem: string;
  before(() => {
    pki = createPki();
    const ca = pki.createCa('unit-ca');
    pem = ca.issue('leaf', { cn: 'leaf' }).certPem.toString('utf8');
    otherPem = ca.issue('other', { cn: 'other' }).certPem.toString('utf8');
  });
  after(() => pki?.cleanup());

  describe('urlEncodedPem (Envoy source.certificate, nginx $ssl_client_escaped_cert)', () => {
    it('decodes one certificate; of a chain, the first (the leaf)', () => {
      assert.equal(urlEncodedPem(encodeURIComponent(pem)), pem);
      const chain = urlEncodedPem(encodeURIComponent(pem + otherPem));
      assert.equal(new X509Certificate(chain!).subject, new X509Certificate(pem).subject);
    });

    it('gives nothing for empty, undecodable or non-certificate values', () => {
      for (const v of [undefined, '', '%E0%A4%A', 'hello', encodeURIComponent('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'), encodeURIComponent('-----BEGIN CERTIFICATE-----\n<script>\n-----END CERTIFICATE-----\n')]) {
        assert.equal(urlEncodedPem(v), undefined, String(v));
      }
    });
  });

  describe('forwardedCertificateThumbprint (x-forwarded-client-cert Hash=)', () => {
    const der = () => new X509Certificate(pem).raw;
    const hex = () => createHash('sha256').update(der()).digest('hex');
    const x5t = () => createHash('sha256').update(der()).digest('base64url');

    it('turns the lowercase hex SHA-256 into the x5t#S256 thumbprint', () => {
      assert.equal(forwardedCertificateThumbprint(`Hash=${hex()}`), x5t());
      assert.equal(forwardedCertificateThumbprint(`By=spiffe://corp/envoy;Hash=${hex()};Subject="O=a,CN=b;c";URI=spiffe://corp/x`), x5t(), 'quoted values may hold , and ;');
      assert.equal(forwardedCertificateThumbprint(`hash="${hex()}"`), x5t(), 'key case-insensitive, value may be quoted');
    });

    it('reads the last element (the nearest proxy\'s) when several hops appended theirs', () => {
      const other = createHash('sha256').update(new X509Certificate(otherPem).raw).digest('hex');
      assert.equal(forwardedCertificateThumbprint(`Hash=${other};By=x,Hash=${hex()}`), x5t());
      assert.equal(forwardedCertificateThumbprint(`Hash=${hex()},By=spiffe://corp/no-hash`), undefined, 'the last hop had no certificate');
    });

    it('gives nothing for a missing or ill-formed hash', () => {
      for (const v of [undefined, '', 'By=x', `Hash=${hex().toUpperCase()}`, `Hash=${hex().slice(1)}`, `Hash=${hex()}00`, `Hash=${x5t()}`]) {
        assert.equal(forwardedCertificateThumbprint(v), undefined, String(v));
      }
    });

    it('a thumbprint reaches the verifier as { x5tS256 }, a certificate as its PEM', () => {
      assert.deepEqual(certificateRequirement({ thumbprint: 'T' }), { clientCertificate: { x5tS256: 'T' } });
      assert.deepEqual(certificateRequirement({ certificate: pem }), { clientCertificate: pem });
      assert.deepEqual(certificateRequirement(undefined), {});
    });
  });

  describe('forwardedRequest (X-Forwarded-*)', () => {
    const req = (headers: Record<string, string | string[]>) => ({ headers }) as unknown as IncomingMessage;
    it('rebuilds method and absolute URI, first value of a list, X-Original-URI as a stand-in', () => {
      assert.deepEqual(forwardedRequest(req({ 'x-forwarded-method': 'GET', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'shop.test:8443', 'x-forwarded-uri': '/a?b=1' })), { method: 'GET', uri: 'https://shop.test:8443/a?b=1' });
      assert.deepEqual(forwardedRequest(req({ 'x-forwarded-method': 'PUT', 'x-forwarded-proto': 'https, http', 'x-forwarded-host': 'a.test, b.test', 'x-original-uri': '/x' })), { method: 'PUT', uri: 'https://a.test/x' });
    });
    it('gives nothing when a part is missing', () => {
      assert.equal(forwardedRequest(req({ 'x-forwarded-proto': 'https', 'x-forwarded-host': 'a.test', 'x-forwarded-uri': '/' })), undefined);
      assert.equal(forwardedRequest(req({ 'x-forwarded-method': 'GET', 'x-forwarded-host': 'a.test', 'x-forwarded-uri': '/' })), undefined);
      assert.equal(forwardedRequest(req({ 'x-forwarded-method': 'GET', 'x-forwarded-proto': 'https', 'x-forwarded-uri': '/' })), undefined);
      assert.equal(forwardedRequest(req({ 'x-forwarded-method': 'GET', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'a.test' })), undefined);
    });
  });

  describe('httpDenial challenges (RFC 6750 §3, RFC 9449 §7.1)', () => {
    const challenge = (reason: Parameters<typeof httpDenial>[0], scheme?: 'Bearer' | 'DPoP') => httpDenial(reason, 'd', [], scheme).headers['www-authenticate'];
    it('a proof problem is always a DPoP challenge with invalid_dpop_proof and the algorithms', () => {
      for (const scheme of ['Bearer', 'DPoP'] as const) assert.equal(challenge('INVALID_DPOP_PROOF', scheme), 'DPoP error="invalid_dpop_proof", error_description="INVALID_DPOP_PROOF", algs="ES256 EdDSA RS256"');
      assert.equal(httpDenial('INVALID_DPOP_PROOF', 'd').status, 401);
      assert.equal(JSON.parse(httpDenial('INVALID_DPOP_PROOF', 'd').body).error, 'invalid_dpop_proof');
    });
    it('other rejections use the scheme the token came with', () => {
      assert.equal(challenge('BINDING_MISMATCH'), 'Bearer error="invalid_token", error_description="BINDING_MISMATCH"');
      assert.equal(challenge('EXPIRED', 'DPoP'), 'DPoP error="invalid_token", error_description="EXPIRED", algs="ES256 EdDSA RS256"');
      assert.equal(challenge('MISSING_TOKEN', 'DPoP'), 'Bearer', 'no token: the bare challenge');
    });
  });
});
