/**
 * DPoP keys and proofs for tests (RFC 9449 §4), including deliberately broken ones: like
 * token-forge.ts, nothing here validates anything. Thumbprints are computed by `jose` (an
 * independent implementation), never by the code under test.
 *
 *   const k = await generateDpopKey('ES256');
 *   const proof = forgeDpopProof({ key: k, method: 'GET', uri: 'https://api.test/orders', accessToken });
 *   const token = forgeToken({ key: issuerKey, payload: accessPayload({ iss, cnf: { jkt: k.jkt } }) });
 */
import { createHash, randomUUID, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint } from 'jose';
import type { SigningAlgorithm } from '../../src/verifier/jose-rules.js';
import { forgeToken, generateTestKey, type ForgeAlgorithm, type ForgePart } from './token-forge.js';

export interface DpopKey {
  readonly alg: SigningAlgorithm;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** The public JWK as a client puts it in the proof header. */
  readonly publicJwk: Readonly<Record<string, string>>;
  /** The private JWK (for the "embedded private key" attack). */
  readonly privateJwk: Readonly<Record<string, string>>;
  /** RFC 7638 thumbprint by jose's calculateJwkThumbprint: what `cnf.jkt` carries. */
  readonly jkt: string;
}

export async function generateDpopKey(alg: SigningAlgorithm = 'ES256'): Promise<DpopKey> {
  const k = generateTestKey(alg);
  const publicJwk = k.publicKey.export({ format: 'jwk' }) as Record<string, string>;
  const privateJwk = k.privateKey.export({ format: 'jwk' }) as Record<string, string>;
  return { alg, privateKey: k.privateKey, publicKey: k.publicKey, publicJwk, privateJwk, jkt: await calculateJwkThumbprint(publicJwk, 'sha256') };
}

/** base64url SHA-256 of the access token: the proof's `ath`. */
export function ath(accessToken: string): string {
  return createHash('sha256').update(accessToken, 'ascii').digest('base64url');
}

export interface ProofOptions {
  key: DpopKey;
  method: string;
  uri: string;
  /** Sets `ath`; omitted: no `ath` (token endpoint proofs). */
  accessToken?: string;
  /** Default: now. */
  iatSec?: number;
  /** Default: a fresh UUID. */
  jti?: string;
  /** Merged over the default header `{ typ: 'dpop+jwt', alg, jwk }`; undefined deletes a member. */
  headerExtra?: Record<string, unknown>;
  /** Use this header verbatim. */
  header?: ForgePart;
  /** Merged over the default payload; undefined deletes a member. */
  payloadExtra?: Record<string, unknown>;
  /** Sign with another algorithm (HS256 with a secret, none, ...). */
  alg?: ForgeAlgorithm;
  /** Sign with this key instead of `key.privateKey` (a secret for HS*). */
  signWith?: KeyObject | Uint8Array | string;
}

export function forgeDpopProof(o: ProofOptions): string {
  const alg = o.alg ?? o.key.alg;
  let header: ForgePart;
  if (o.header !== undefined) header = o.header;
  else header = merge({ typ: 'dpop+jwt', alg, jwk: o.key.publicJwk }, o.headerExtra);
  const payload = merge(
    {
      jti: o.jti ?? randomUUID(),
      htm: o.method,
      htu: o.uri,
      iat: o.iatSec ?? Math.floor(Date.now() / 1000),
      ...(o.accessToken === undefined ? {} : { ath: ath(o.accessToken) }),
    },
    o.payloadExtra,
  );
  return forgeToken({ header, payload, alg, key: o.signWith ?? o.key.privateKey });
}

function merge(base: Record<string, unknown>, extra: Record<string, unknown> | undefined): Record<string, unknown> {
  const out = { ...base };
  for (const [name, value] of Object.entries(extra ?? {})) {
    if (value === undefined) delete out[name];
    else out[name] = value;
  }
  return out;
}

/** Replace a proof's header (e.g. another `jwk`) and keep its payload and signature. */
export function swapProofHeader(proof: string, header: Record<string, unknown>): string {
  const parts = proof.split('.');
  return `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${parts[1]}.${parts[2]}`;
}
