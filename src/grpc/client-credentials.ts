import { readFileSync } from 'node:fs';
import { credentials, type ChannelCredentials } from '@grpc/grpc-js';
import { ErrorCodes, TokenAuthorityError } from '../shared/errors.js';

/** PEM files an operator's client uses to reach a TLS authority. */
export interface ClientTlsFiles {
  /** CA that signed the authority's certificate (default: the system roots). */
  tlsCa?: string | undefined;
  /** Client certificate and key, for an authority that requires mutual TLS. */
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
}

/** Channel credentials: plaintext when no file is given, TLS (mutual when a certificate is given) otherwise. */
export function clientCredentials(files: ClientTlsFiles): ChannelCredentials {
  const { tlsCa, tlsCert, tlsKey } = files;
  if (!tlsCa && !tlsCert && !tlsKey) return credentials.createInsecure();
  if (Boolean(tlsCert) !== Boolean(tlsKey)) throw new TokenAuthorityError(ErrorCodes.CONFIG, '--tls-cert and --tls-key must be given together');
  const read = (path: string | undefined, flag: string) => {
    if (!path) return null;
    try {
      return readFileSync(path);
    } catch (err) {
      throw new TokenAuthorityError(ErrorCodes.CONFIG, `cannot read ${flag} ${path}: ${(err as Error).message}`, { cause: err });
    }
  };
  return credentials.createSsl(read(tlsCa, '--tls-ca'), read(tlsKey, '--tls-key'), read(tlsCert, '--tls-cert'));
}
