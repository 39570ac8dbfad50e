import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

/**
 * Integrity of refresh-token records against a writer of the store who lacks the seal secret
 * (session-seal.ts). Two secrets are derived (HKDF, own labels) from each seal secret:
 *
 *  - the key secret: a token's store key is HMAC(key secret, token). Without the secret nobody can
 *    make a token of their choosing map to a record, nor find the record of a token they hold
 *    other than by asking the authority;
 *  - the proof secret: a live record carries `proof` = MAC over (key, sid, exp, issuedAt), so a
 *    record cannot be repointed to another session or have its expiry or issue time (idle timeout)
 *    changed; a spent record carries a grace proof over (key, sid, successor, spentAt), so the grace
 *    window cannot be widened or moved. Stores delete these proofs when a token is spent (live
 *    proof) or its session revoked (both), so edits of `state`/`revoked` fields revive nothing.
 *
 * Proofs are `p1.<secret id>.<mac>`, checkable with any configured secret (KEK rotation); keys are
 * computed for every configured secret, the current one first.
 */
export interface RefreshIntegrity {
  /** The store keys a token may have: under the current secret first, then under older ones. */
  keys(token: string): string[];
  liveProof(key: string, sessionId: string, expiresAt: number, issuedAt: number): string;
  graceProof(key: string, sessionId: string, successor: string, spentAt: number): string;
  checkLive(key: string, sessionId: string, expiresAt: number, issuedAt: number, proof: string | undefined): boolean;
  checkGrace(key: string, sessionId: string, successor: string, spentAt: number, proof: string | undefined): boolean;
}

interface Derived {
  id: string;
  keySecret: Buffer;
  proofSecret: Buffer;
}

const derive = (secret: Buffer, label: string) => Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), label, 32));

export function createRefreshIntegrity(current: { id: string; secret: Buffer }, older: ReadonlyArray<{ id: string; secret: Buffer }> = []): RefreshIntegrity {
  const all: Derived[] = [current, ...older].map((k) => ({
    id: k.id,
    keySecret: derive(k.secret, 'token-authority refresh-token store key v1'),
    proofSecret: derive(k.secret, 'token-authority refresh-token record proof v1'),
  }));
  const byId = new Map(all.map((d) => [d.id, d.proofSecret]));
  const mac = (secret: Buffer, fields: ReadonlyArray<string | number>) => createHmac('sha256', secret).update(JSON.stringify(fields)).digest();
  const make = (fields: ReadonlyArray<string | number>) => `p1.${all[0]!.id}.${mac(all[0]!.proofSecret, fields).toString('base64url')}`;
  const check = (fields: ReadonlyArray<string | number>, proof: string | undefined) => {
    const m = /^p1\.([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{43})$/.exec(proof ?? '');
    const secret = m ? byId.get(m[1]!) : undefined;
    if (!m || !secret) return false;
    return timingSafeEqual(mac(secret, fields), Buffer.from(m[2]!, 'base64url'));
  };
  const live = (key: string, sid: string, exp: number, iat: number) => ['live', key, sid, exp, iat];
  const grace = (key: string, sid: string, succ: string, spentAt: number) => ['grace', key, sid, succ, spentAt];
  return {
    keys: (token) => all.map((d) => createHmac('sha256', d.keySecret).update(token).digest('base64url')),
    liveProof: (key, sid, exp, iat) => make(live(key, sid, exp, iat)),
    graceProof: (key, sid, succ, spentAt) => make(grace(key, sid, succ, spentAt)),
    checkLive: (key, sid, exp, iat, proof) => Number.isSafeInteger(exp) && Number.isSafeInteger(iat) && check(live(key, sid, exp, iat), proof),
    checkGrace: (key, sid, succ, spentAt, proof) => Number.isSafeInteger(spentAt) && check(grace(key, sid, succ, spentAt), proof),
  };
}
