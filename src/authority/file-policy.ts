import { readFileSync, statSync } from 'node:fs';
import { z } from 'zod';
import { parseDurationMs } from '../shared/duration.js';
import { ErrorCodes, TokenAuthorityError, permissionDenied } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { principalName, type Principal } from '../shared/principal.js';
import type { AccessPolicy, IssueGrant, PrivilegedAction } from './admission.js';
import { duplicateKeyPath } from './json-duplicates.js';

/** Rights a client may hold besides Issue: revoking what it does not hold. */
export const REVOKE_RIGHTS = ['subject', 'session', 'token_id'] as const;
export type RevokeRight = (typeof REVOKE_RIGHTS)[number];

/** One client's rights, as parsed from the file. */
export interface ClientRights {
  /** Absent: the client may not Issue. */
  readonly issue?: IssueGrant;
  readonly revoke: ReadonlySet<RevokeRight>;
  /** May call the OAuth introspection endpoint (RFC 7662). */
  readonly introspect?: boolean;
}

/** A parsed, validated client policy file. */
export interface ClientPolicyDocument {
  /** Keyed by caller identity: a URI (has ":") for a SAN URI, else a SAN DNS name or a SAN-less certificate's CN. */
  readonly clients: ReadonlyMap<string, ClientRights>;
  /** Callers on a loopback address hold every right, whatever their certificate says. */
  readonly loopbackIsPrivileged: boolean;
}

const ANY = '*';

const nameList = (what: string) =>
  z
    .array(z.string().min(1, `${what} must not be empty`).max(256, `${what} longer than 256 characters`))
    .refine((xs) => !xs.includes(ANY) || xs.length === 1, { message: `"${ANY}" (any) must be the only entry` });

const ttl = z.string().transform((text, ctx) => {
  const ms = parseDurationMs(text);
  if (ms === undefined || ms < 1000) {
    ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration of at least 1s (examples: 900s, 15m, 1h)` });
    return z.NEVER;
  }
  return ms;
});

const clientSchema = z.strictObject({
  issue: z
    .strictObject({
      audiences: nameList('an audience').min(1, 'list at least one audience, or ["*"] for any audience the authority allows'),
      scopes: nameList('a scope'),
      maxAccessTtl: ttl.optional(),
      clientIds: nameList('a client_id').min(1, 'list at least one client_id, or ["*"] for any').optional(),
      extraClaims: nameList('an extra-claim name').optional(),
    })
    .optional(),
  revoke: z.array(z.enum(REVOKE_RIGHTS)).optional(),
  introspect: z.boolean().optional(),
});

const fileSchema = z.strictObject({
  version: z.literal(1, 'must be 1 (the only version of this format)'),
  clients: z.record(
    z
      .string()
      .min(1, 'a client identity must not be empty')
      .max(1024, 'a client identity is at most 1024 characters')
      .regex(/^[^\s\u0000-\u001f\u007f](?:[^\u0000-\u001f\u007f]*[^\s\u0000-\u001f\u007f])?$/, 'a client identity must not have control characters or surrounding spaces'),
    clientSchema,
  ),
  loopbackIsPrivileged: z.boolean().optional(),
});

/** `$.clients["spiffe://corp/login"].issue.maxAccessTtl` from zod's path. */
function jsonPath(path: readonly PropertyKey[]): string {
  let out = '$';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (typeof p === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(p)) out += `.${p}`;
    else out += `[${JSON.stringify(String(p))}]`;
  }
  return out;
}

/**
 * Parse and validate a client policy. Throws TokenAuthorityError(ERR_CONFIG) naming the file and
 * the JSON path of every bad entry.
 */
export function parseClientPolicy(text: string, path: string): ClientPolicyDocument {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new TokenAuthorityError(ErrorCodes.CONFIG, `client policy ${path} is not valid JSON: ${(err as Error).message}`);
  }
  const duplicate = duplicateKeyPath(text);
  if (duplicate) throw new TokenAuthorityError(ErrorCodes.CONFIG, `client policy ${path} is invalid: duplicate key ${jsonPath(duplicate)} (every key may occur once per object)`);
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) {
    // A bad record key arrives as one "invalid key" issue wrapping the key schema's own messages.
    const problems = parsed.error.issues.flatMap((i) =>
      i.code === 'invalid_key' ? i.issues.map((inner) => `${jsonPath(i.path)}: ${inner.message}`) : [`${jsonPath(i.path)}: ${i.message}`],
    );
    throw new TokenAuthorityError(
      ErrorCodes.CONFIG,
      `client policy ${path} is invalid (${problems.length} problem${problems.length > 1 ? 's' : ''}):\n  - ${problems.join('\n  - ')}`,
    );
  }
  const clients = new Map<string, ClientRights>();
  for (const [identity, c] of Object.entries(parsed.data.clients)) {
    const issue: IssueGrant | undefined = c.issue && {
      ...(c.issue.audiences[0] === ANY ? {} : { audiences: Object.freeze([...c.issue.audiences]) }),
      ...(c.issue.scopes[0] === ANY ? {} : { scopes: Object.freeze([...c.issue.scopes]) }),
      ...(c.issue.maxAccessTtl !== undefined ? { maxAccessTtlMs: c.issue.maxAccessTtl } : {}),
      // client_id: the client's own identity unless the policy lists others (or "*").
      ...(c.issue.clientIds?.[0] === ANY ? {} : { clientIds: Object.freeze([...(c.issue.clientIds ?? [identity])]) }),
      ...(c.issue.extraClaims === undefined || c.issue.extraClaims[0] === ANY ? {} : { extraClaims: Object.freeze([...c.issue.extraClaims]) }),
    };
    clients.set(identity, { ...(issue ? { issue } : {}), revoke: new Set(c.revoke ?? []), ...(c.introspect ? { introspect: true } : {}) });
  }
  const names = new Map<string, string>();
  for (const id of clients.keys()) {
    if (isUriKey(id)) continue;
    const other = names.get(id.toLowerCase());
    if (other !== undefined) throw new TokenAuthorityError(ErrorCodes.CONFIG, `client policy ${path} is invalid: ${jsonPath(['clients', other])} and ${jsonPath(['clients', id])} are the same name (DNS names and CNs match without regard to case)`);
    names.set(id.toLowerCase(), id);
  }
  return { clients, loopbackIsPrivileged: parsed.data.loopbackIsPrivileged ?? false };
}

/**
 * How a policy key names a certificate identity: a key with ":" is a URI and matches a SAN URI
 * exactly; any other key is a name and matches a SAN DNS name, or the CN of a certificate without
 * any SAN, without regard to case. A CN never matches a URI key, whatever it spells.
 */
const isUriKey = (key: string) => key.includes(':');

/** Name keys of a document by their lower-case form (built once per document). */
const nameIndexes = new WeakMap<ClientPolicyDocument, ReadonlyMap<string, string>>();
function nameIndex(doc: ClientPolicyDocument): ReadonlyMap<string, string> {
  let index = nameIndexes.get(doc);
  if (!index) {
    index = new Map([...doc.clients.keys()].filter((k) => !isUriKey(k)).map((k) => [k.toLowerCase(), k]));
    nameIndexes.set(doc, index);
  }
  return index;
}

/** Read, check and parse the file (ERR_CONFIG on any problem). */
export function loadClientPolicy(path: string): ClientPolicyDocument {
  let text: string;
  try {
    // The file grants the right to mint tokens: anyone who may write it holds that right.
    if ((statSync(path).mode & 0o002) !== 0) {
      throw new TokenAuthorityError(ErrorCodes.CONFIG, `client policy ${path} is writable by every user: chmod o-w it`);
    }
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof TokenAuthorityError) throw err;
    throw new TokenAuthorityError(ErrorCodes.CONFIG, `cannot read client policy ${path}: ${(err as Error).message}`, { cause: err });
  }
  return parseClientPolicy(text, path);
}

/** The words a denial uses for an action. */
const ACTION_LABEL: Readonly<Record<PrivilegedAction, string>> = {
  issue: 'Issue',
  'revoke:subject': 'Revoke by subject',
  'revoke:session': 'Revoke by session_id',
  'revoke:token_id': 'Revoke by token_id',
  introspect: 'Token introspection',
};

function rightsOf(r: ClientRights): string[] {
  return [...(r.issue ? ['issue'] : []), ...REVOKE_RIGHTS.filter((x) => r.revoke.has(x)).map((x) => `revoke:${x}`), ...(r.introspect ? ['introspect'] : [])];
}

function allows(r: ClientRights, action: PrivilegedAction): boolean {
  if (action === 'introspect') return r.introspect === true;
  return action === 'issue' ? r.issue !== undefined : r.revoke.has(action.slice('revoke:'.length) as RevokeRight);
}

/**
 * Decide with a policy document. Unauthenticated (no certificate identity) and unauthorized
 * (an identity without the right) are different answers, and both name what is missing.
 */
export function createDocumentPolicy(current: () => ClientPolicyDocument): AccessPolicy {
  const entryOf = (principal: Principal): { identity: string; rights: ClientRights } | undefined => {
    const doc = current();
    for (const id of principal.identities) {
      const identity = id.kind === 'uri' ? (isUriKey(id.value) ? id.value : undefined) : nameIndex(doc).get(id.value.toLowerCase());
      const rights = identity === undefined ? undefined : doc.clients.get(identity);
      if (rights) return { identity: identity!, rights };
    }
    return undefined;
  };
  return {
    authorize(principal, action) {
      if (current().loopbackIsPrivileged && principal.loopback) return;
      if (principal.identities.length === 0) {
        throw new TokenAuthorityError(
          ErrorCodes.UNAUTHENTICATED,
          `${ACTION_LABEL[action]} requires a client certificate (mutual TLS) whose identity (SAN URI, SAN DNS name or CN) is listed in the client policy; this call presented none`,
        );
      }
      const entry = entryOf(principal);
      if (!entry) throw permissionDenied(`client ${principalName(principal)} may not ${action}; allowed: none (the client policy has no entry for it)`);
      if (!allows(entry.rights, action)) {
        const held = rightsOf(entry.rights);
        throw permissionDenied(`client ${entry.identity} may not ${action}; allowed: ${held.length > 0 ? held.join(', ') : 'none'}`);
      }
    },
    issueGrant(principal): IssueGrant {
      const entry = entryOf(principal);
      if (entry?.rights.issue) return entry.rights.issue;
      // Only reached after authorize(): a privileged loopback caller without an entry of its own.
      if (current().loopbackIsPrivileged && principal.loopback) return {};
      throw permissionDenied(`client ${principalName(principal)} may not issue`);
    },
  };
}

export type ReloadOutcome = { ok: true; clients: number } | { ok: false; error: string };

/** An AccessPolicy read from a file, which `reload()` (SIGHUP) replaces atomically. */
export interface FilePolicy extends AccessPolicy {
  readonly path: string;
  /** Clients in the policy now in force. */
  readonly clientCount: number;
  /** Re-read the file. A bad file is logged and rejected; the policy in force stays. */
  reload(): ReloadOutcome;
}

/**
 * The client policy file as an AccessPolicy. The first load throws ERR_CONFIG (the authority must
 * not start on a bad file); later reloads never throw, so a typo during operation cannot open or
 * close the authority.
 */
export function createFilePolicy(path: string, logger: Logger): FilePolicy {
  let doc = loadClientPolicy(path);
  const policy = createDocumentPolicy(() => doc);
  logger.info({ path, clients: doc.clients.size, loopbackIsPrivileged: doc.loopbackIsPrivileged }, 'client policy loaded');
  return {
    ...policy,
    path,
    get clientCount() {
      return doc.clients.size;
    },
    reload() {
      try {
        doc = loadClientPolicy(path);
      } catch (err) {
        const error = (err as Error).message;
        logger.error({ path, error }, 'client policy reload failed: the previous policy stays in force');
        return { ok: false, error };
      }
      logger.info({ path, clients: doc.clients.size, loopbackIsPrivileged: doc.loopbackIsPrivileged }, 'client policy reloaded');
      return { ok: true, clients: doc.clients.size };
    },
  };
}
