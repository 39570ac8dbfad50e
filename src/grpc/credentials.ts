import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ServerCredentials } from '@grpc/grpc-js';
import { ErrorCodes, TokenAuthorityError } from '../shared/errors.js';

export interface TlsFiles {
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
  tlsClientCa?: string | undefined;
}

const configError = (message: string, cause?: unknown) => new TokenAuthorityError(ErrorCodes.CONFIG, message, { cause });

function read(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw configError(`cannot read ${what} ${path}: ${(err as Error).message}`, err);
  }
}

function certificate(pem: Buffer, path: string, what: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw configError(`${what} ${path} is not a PEM certificate: ${(err as Error).message}`, err);
  }
}

/** The checked PEM bytes of a TLS server: certificate chain, key, and the client CA for mutual TLS. */
export interface ServerTlsMaterial {
  certPem: Buffer;
  keyPem: Buffer;
  clientCaPem: Buffer | null;
}

/**
 * Read and check the TLS files (undefined when none are given; config allows that only on
 * loopback or with TA_INSECURE). The files are checked here, at start, so that a wrong file is a
 * clear message naming it instead of every handshake failing later: each must parse, the key must
 * belong to the certificate, and the certificate must be within its validity period. The gRPC
 * server and the authority's HTTPS listener both use this.
 */
export function readServerTls(files: TlsFiles, nowMs: number = Date.now()): ServerTlsMaterial | undefined {
  if (!files.tlsCert || !files.tlsKey) return undefined;
  const certPem = read(files.tlsCert, 'TA_TLS_CERT');
  const keyPem = read(files.tlsKey, 'TA_TLS_KEY');
  const ca = files.tlsClientCa ? read(files.tlsClientCa, 'TA_TLS_CLIENT_CA') : null;
  const cert = certificate(certPem, files.tlsCert, 'TA_TLS_CERT');
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw configError(`TA_TLS_KEY ${files.tlsKey} is not an unencrypted PEM private key: ${(err as Error).message}`, err);
  }
  if (!cert.checkPrivateKey(key)) throw configError(`TA_TLS_KEY ${files.tlsKey} is not the private key of the certificate in TA_TLS_CERT ${files.tlsCert}`);
  if (Date.parse(cert.validTo) < nowMs) throw configError(`TA_TLS_CERT ${files.tlsCert} expired on ${cert.validTo}`);
  if (Date.parse(cert.validFrom) > nowMs) throw configError(`TA_TLS_CERT ${files.tlsCert} is not valid before ${cert.validFrom}`);
  if (ca && files.tlsClientCa) certificate(ca, files.tlsClientCa, 'TA_TLS_CLIENT_CA');
  return { certPem, keyPem, clientCaPem: ca };
}

/** gRPC server credentials from the checked files: plaintext when none are given. */
export function serverCredentials(files: TlsFiles, nowMs: number = Date.now()): ServerCredentials {
  const tls = readServerTls(files, nowMs);
  if (!tls) return ServerCredentials.createInsecure();
  const ca = tls.clientCaPem;
  return ServerCredentials.createSsl(ca, [{ cert_chain: tls.certPem, private_key: tls.keyPem }], ca !== null);
}
