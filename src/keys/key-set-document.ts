/**
 * Validation of a key-set document read from any store. A store is outside the process's
 * control (a file an operator edited, a Redis value another version wrote), so nothing it
 * returns is trusted until it has passed through here.
 */
import { KEY_SHAPES, MAX_KID_LENGTH, PRIVATE_JWK_MEMBERS, SIGNING_ALGORITHMS, isSigningAlgorithm, type SigningAlgorithm } from '../verifier/jose-rules.js';
import { ErrorCodes, TokenAuthorityError } from '../shared/errors.js';
import { KEY_STATES, type KeySetDocument, type KeyState, type PrivateJwk, type PublicJwk, type StoredKey } from './key-store.js';

/** Our own kids are base64url (key-generator.ts), within the verifier's bound. */
const KID_PATTERN = new RegExp(`^[A-Za-z0-9_-]{1,${MAX_KID_LENGTH}}$`);
const B64URL_PATTERN = /^[A-Za-z0-9_-]+$/;

class Invalid extends Error {}

function fail(path: string, problem: string): never {
  throw new Invalid(`${path} ${problem}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function time(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    fail(path, 'must be a non-negative integer (epoch milliseconds)');
  }
  return value;
}

function optionalTime(value: unknown, path: string): number | undefined {
  return value === undefined ? undefined : time(value, path);
}

function parsePublicJwk(value: unknown, path: string, kid: string, alg: SigningAlgorithm): PublicJwk {
  if (!isRecord(value)) fail(path, 'must be an object');
  for (const member of PRIVATE_JWK_MEMBERS) {
    if (member in value) fail(path, `must not contain the private member "${member}"`);
  }
  const shape = KEY_SHAPES[alg];
  if (value.kty !== shape.kty) fail(`${path}.kty`, `must be "${shape.kty}" for ${alg}`);
  if (shape.crv !== undefined && value.crv !== shape.crv) fail(`${path}.crv`, `must be "${shape.crv}" for ${alg}`);
  if (value.kid !== kid) fail(`${path}.kid`, 'must equal the key\'s kid');
  if (value.alg !== alg) fail(`${path}.alg`, 'must equal the key\'s alg');
  if (value.use !== 'sig') fail(`${path}.use`, 'must be "sig"');
  // Same member order as a freshly generated key, so every replica serialises one JWKS alike.
  const jwk: Record<string, unknown> = { kty: shape.kty };
  for (const member of shape.members) {
    const v = value[member];
    if (typeof v !== 'string' || (member !== 'crv' && !B64URL_PATTERN.test(v))) {
      fail(`${path}.${member}`, 'must be a base64url string');
    }
    jwk[member] = v;
  }
  jwk.kid = kid;
  jwk.alg = alg;
  jwk.use = 'sig';
  return jwk as unknown as PublicJwk;
}

function parsePrivateJwk(value: unknown, path: string, publicJwk: PublicJwk): PrivateJwk {
  if (!isRecord(value)) fail(path, 'must be an object');
  const shape = KEY_SHAPES[publicJwk.alg];
  if (value.kty !== shape.kty) fail(`${path}.kty`, `must be "${shape.kty}" for ${publicJwk.alg}`);
  const jwk: Record<string, unknown> = { ...publicJwk };
  for (const member of shape.members) {
    if (value[member] !== (publicJwk as unknown as Record<string, unknown>)[member]) {
      fail(`${path}.${member}`, 'does not match the public key');
    }
  }
  for (const member of shape.privateMembers) {
    const v = value[member];
    if (typeof v !== 'string' || !B64URL_PATTERN.test(v)) fail(`${path}.${member}`, 'must be a base64url string');
    jwk[member] = v;
  }
  return jwk as unknown as PrivateJwk;
}

function parseStoredKey(value: unknown, path: string): StoredKey {
  if (!isRecord(value)) fail(path, 'must be an object');
  const { kid, alg, state } = value;
  if (typeof kid !== 'string' || !KID_PATTERN.test(kid)) fail(`${path}.kid`, `must be 1-${MAX_KID_LENGTH} base64url characters`);
  if (!isSigningAlgorithm(alg)) fail(`${path}.alg`, `must be one of ${SIGNING_ALGORITHMS.join(', ')}`);
  if (typeof state !== 'string' || !(KEY_STATES as readonly string[]).includes(state)) {
    fail(`${path}.state`, `must be one of ${KEY_STATES.join(', ')}`);
  }
  const publicJwk = parsePublicJwk(value.publicJwk, `${path}.publicJwk`, kid, alg);
  const key: StoredKey = {
    kid,
    alg,
    state: state as KeyState,
    createdAt: time(value.createdAt, `${path}.createdAt`),
    privateJwk: parsePrivateJwk(value.privateJwk, `${path}.privateJwk`, publicJwk),
    publicJwk,
  };
  const activatedAt = optionalTime(value.activatedAt, `${path}.activatedAt`);
  const retiredAt = optionalTime(value.retiredAt, `${path}.retiredAt`);
  const removeAfter = optionalTime(value.removeAfter, `${path}.removeAfter`);
  if (activatedAt !== undefined) key.activatedAt = activatedAt;
  if (retiredAt !== undefined) key.retiredAt = retiredAt;
  if (removeAfter !== undefined) key.removeAfter = removeAfter;
  if (key.state === 'active' && activatedAt === undefined) fail(path, 'is active but has no activatedAt');
  if (key.state === 'retired' && (retiredAt === undefined || removeAfter === undefined)) {
    fail(path, 'is retired but lacks retiredAt or removeAfter');
  }
  return key;
}

/**
 * Checks that `value` is a well-formed key-set document (shapes, one key per kid, at most one
 * `active` and one `next` key) and returns a clean copy holding only known members.
 * @param where names the source (e.g. the file path) in the error message.
 * @throws TokenAuthorityError ERR_KEY naming `where` and the offending member. The message never
 *   contains key material.
 */
export function parseKeySetDocument(value: unknown, where: string): KeySetDocument {
  try {
    if (!isRecord(value)) fail('document', 'must be a JSON object');
    const { version, keys } = value;
    if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) {
      fail('version', 'must be a positive integer');
    }
    if (!Array.isArray(keys)) fail('keys', 'must be an array');
    const parsed = keys.map((k, i) => parseStoredKey(k, `keys[${i}]`));
    const kids = new Set<string>();
    for (const k of parsed) {
      if (kids.has(k.kid)) fail('keys', `contain the kid "${k.kid}" twice`);
      kids.add(k.kid);
    }
    for (const state of ['active', 'next'] as const) {
      const n = parsed.filter((k) => k.state === state).length;
      if (n > 1) fail('keys', `contain ${n} ${state} keys; at most one is allowed`);
    }
    return { version, keys: parsed };
  } catch (err) {
    if (err instanceof Invalid) {
      throw new TokenAuthorityError(ErrorCodes.KEY, `invalid key set in ${where}: ${err.message}`);
    }
    throw err;
  }
}

/** Guards the save contract shared by every store: the new document is exactly one version on. */
export function assertNextVersion(doc: KeySetDocument, expectedVersion: number): void {
  if (!Number.isSafeInteger(expectedVersion) || expectedVersion < 0 || doc.version !== expectedVersion + 1) {
    throw new TokenAuthorityError(
      ErrorCodes.INTERNAL,
      `key set save: document version ${doc.version} must be expectedVersion + 1 (${expectedVersion + 1})`,
    );
  }
}
