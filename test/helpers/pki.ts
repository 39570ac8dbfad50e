import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A certificate and its key, as files and as PEM bytes. */
export interface CertFiles {
  cert: string;
  key: string;
  certPem: Buffer;
  keyPem: Buffer;
}

export interface LeafOptions {
  /** Subject CN; omitted = a subject with only an O (no identity at all unless `san` gives one). */
  cn?: string;
  /**
   * subjectAltName entries in openssl syntax: "URI:spiffe://corp/login", "DNS:localhost",
   * "IP:127.0.0.1", "email:ops@corp.example". Omitted or empty: no subjectAltName extension at all
   * (with `cn`, a SAN-less certificate whose only name is its CN, which may be any text, e.g. a URI).
   */
  san?: string[];
  /** Server (serverAuth) or client (clientAuth) certificate. Default client. */
  usage?: 'server' | 'client';
}

export interface CertificateAuthority extends CertFiles {
  /** Issue a leaf certificate signed by this CA (EC P-256, valid one day). */
  issue(name: string, options?: LeafOptions): CertFiles;
}

export interface Pki {
  dir: string;
  /** A new self-signed CA (EC P-256, valid two days). */
  createCa(name: string): CertificateAuthority;
  cleanup(): void;
}

/** A value for openssl's `-subj` "/K=V/…" syntax: "/", "+", "=" and "\\" escaped. */
const subjectValue = (v: string) => v.replace(/[\\/+=]/g, (c) => `\\${c}`);

/**
 * A throwaway PKI made with the `openssl` command in a fresh temp directory: nothing is committed,
 * every run has its own keys. EC P-256 keeps generation to a few milliseconds per certificate.
 */
export function createPki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'ta-pki-'));
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const files = (base: string): CertFiles => ({
    cert: join(dir, `${base}.pem`),
    key: join(dir, `${base}.key`),
    certPem: readFileSync(join(dir, `${base}.pem`)),
    keyPem: readFileSync(join(dir, `${base}.key`)),
  });
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  return {
    dir,
    createCa(name) {
      openssl('req', '-x509', '-new', ...ecKey, '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name}`,
        '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
      const ca = files(name);
      return {
        ...ca,
        issue(leaf, options = {}) {
          openssl('req', '-new', ...ecKey, '-keyout', `${leaf}.key`, '-out', `${leaf}.csr`, '-subj', options.cn ? `/O=token-authority tests/CN=${subjectValue(options.cn)}` : '/O=token-authority tests');
          const ext = [
            'basicConstraints=CA:FALSE',
            'keyUsage=critical,digitalSignature',
            `extendedKeyUsage=${options.usage === 'server' ? 'serverAuth' : 'clientAuth'}`,
            ...(options.san && options.san.length > 0 ? [`subjectAltName=${options.san.join(',')}`] : []),
          ];
          writeFileSync(join(dir, `${leaf}.ext`), ext.join('\n') + '\n');
          openssl('x509', '-req', '-in', `${leaf}.csr`, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', `0x${randomBytes(8).toString('hex')}`,
            '-days', '1', '-extfile', `${leaf}.ext`, '-out', `${leaf}.pem`);
          return files(leaf);
        },
      };
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The usual cast: a CA, a server certificate for 127.0.0.1/localhost, and clients with every kind of identity. */
export function standardPki() {
  const pki = createPki();
  const ca = pki.createCa('test-ca');
  const rogueCa = pki.createCa('rogue-ca');
  return {
    pki,
    ca,
    server: ca.issue('server', { cn: 'token-authority', san: ['IP:127.0.0.1', 'DNS:localhost'], usage: 'server' }),
    /** SAN URI spiffe://corp/login (and a CN that must not count beside it). */
    login: ca.issue('login', { cn: 'login-cn-ignored', san: ['URI:spiffe://corp/login'] }),
    /** CN only: ops-cli.corp.internal. */
    opsCli: ca.issue('ops-cli', { cn: 'ops-cli.corp.internal' }),
    /** A valid client of the right CA that the policy does not list. */
    stranger: ca.issue('stranger', { san: ['URI:spiffe://corp/stranger'] }),
    /** A valid client certificate that names no identity at all (no SAN, no CN). */
    anonymous: ca.issue('anonymous'),
    /** Claims the login identity, but is signed by another CA. */
    rogue: rogueCa.issue('rogue-login', { san: ['URI:spiffe://corp/login'] }),
    cleanup: () => pki.cleanup(),
  };
}
