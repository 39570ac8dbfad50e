import { readFileSync } from 'node:fs';
import { ServerCredentials } from '@grpc/grpc-js';
import { ErrorCodes, TokenAuthorityError } from '../shared/errors.js';

export interface TlsFiles {
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
  tlsClientCa?: string | undefined;
}

/** Server credentials from PEM files: plaintext when none are given (config allows that only on loopback or with TA_INSECURE). */
export function serverCredentials(files: TlsFiles): ServerCredentials {
  if (!files.tlsCert || !files.tlsKey) return ServerCredentials.createInsecure();
  const read = (path: string, what: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new TokenAuthorityError(ErrorCodes.CONFIG, `cannot read ${what} ${path}: ${(err as Error).message}`, { cause: err });
    }
  };
  const ca = files.tlsClientCa ? read(files.tlsClientCa, 'TA_TLS_CLIENT_CA') : null;
  return ServerCredentials.createSsl(ca, [{ cert_chain: read(files.tlsCert, 'TA_TLS_CERT'), private_key: read(files.tlsKey, 'TA_TLS_KEY') }], ca !== null);
}
