import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { credentials } from '@grpc/grpc-js';
import { authorityClient, type AuthorityClient } from '../../helpers/grpc-client.js';
import type { CertFiles } from '../../helpers/pki.js';

/** A TLS client of the authority on 127.0.0.1:port, trusting `ca`, presenting `cert` when given. */
export function tlsClient(port: number, ca: CertFiles, cert?: CertFiles, deadlineMs = 5000): AuthorityClient {
  return authorityClient(port, {
    credentials: credentials.createSsl(ca.certPem, cert?.keyPem ?? null, cert?.certPem ?? null),
    deadlineMs,
    // Connect to the IP, check the certificate for "localhost" (an IP as TLS server name is deprecated).
    // Each client its own connection (grpc-js would otherwise share one between equal clients).
    channelOptions: { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost', 'grpc.use_local_subchannel_pool': 1 },
  });
}

/** The policy the security tests run under (the README's example, trimmed to what the tests need). */
export const TEST_POLICY = {
  version: 1,
  clients: {
    'spiffe://corp/login': { issue: { audiences: ['orders', 'billing'], scopes: ['read', 'write'], maxAccessTtl: '15m' }, revoke: ['session'] },
    'ops-cli.corp.internal': { revoke: ['subject', 'session', 'token_id'] },
  },
};

/** Write a policy document to `<dir>/<name>` (mode 0644) and return its path. */
export function writePolicy(dir: string, doc: unknown, name = 'client-policy.json'): string {
  const path = join(dir, name);
  writeFileSync(path, typeof doc === 'string' ? doc : JSON.stringify(doc, null, 2));
  chmodSync(path, 0o644);
  return path;
}
