#!/usr/bin/env node
import { Command, Option } from 'commander';
import { Metadata } from '@grpc/grpc-js';
import { loadConfig, loadSetting, type ConfigOf, type ConfigScope } from './config/config.js';
import type { Logger } from './shared/logger.js';
import { OPTIONS } from './config/options.js';
import { errorMessage, invalidArgument, isTokenAuthorityError } from './shared/errors.js';
import { createRootLogger } from './telemetry/logger.js';
import { runAuthority } from './authority/authority-cluster.js';
import { runSidecar } from './sidecar/sidecar-server.js';
import { createKeyManager, createKeyStore, sealKeyFile } from './authority/create-key-store.js';
import { silentLogger } from './shared/logger.js';
import { IssueResponse, RevokeResponse, TokenAuthorityServiceClient, VerifyResponse, type VerifyRequest } from './gen/tokenauthority/v1/token_authority.js';
import { clientCredentials, type ClientTlsFiles } from './grpc/client-credentials.js';
import { readFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { redactUrl } from './shared/redact-url.js';
import { formatFleetStatus, type FleetStatus } from './authority/fleet-status.js';

/**
 * The `token-authority` command. Environment variables are read here and in config/ only.
 */
const program = new Command('token-authority')
  .description('A gRPC token authority: issue, verify, refresh and revoke JWT access tokens.')
  .showHelpAfterError();

function withConfigOptions(cmd: Command, scope: ConfigScope): Command {
  for (const o of OPTIONS) {
    if (o.scope !== 'common' && o.scope !== scope) continue;
    const takesValue = o.key !== 'insecure';
    const def = scope === 'sidecar' ? (o.sidecarDefault ?? o.default) : o.default;
    cmd.addOption(new Option(takesValue ? `${o.flag} <value>` : o.flag, `${o.description} [env ${o.env}${def !== undefined && def !== '' ? `, default ${def}` : ''}]`));
  }
  return cmd;
}

/** commander's camelCase option names → config keys; booleans become "true". */
function flagsOf(cmd: Command): Record<string, string | undefined> {
  const raw = cmd.opts<Record<string, string | boolean | undefined>>();
  const out: Record<string, string | undefined> = {};
  for (const o of OPTIONS) {
    const name = o.flag.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const v = raw[name];
    if (v !== undefined) out[o.key] = typeof v === 'boolean' ? String(v) : v;
  }
  return out;
}

function fail(err: unknown): never {
  const message = errorMessage(err);
  process.stderr.write(`token-authority: ${message}\n`);
  process.exit(isTokenAuthorityError(err) && err.code === 'ERR_CONFIG' ? 2 : 1);
}

function onSignals(stop: () => Promise<void>): void {
  let count = 0;
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      if (++count > 1) process.exit(1);
      stop().then(() => process.exit(0), () => process.exit(1));
    });
  }
}

/** Validate config, make the root logger, start, and stop gracefully on SIGTERM/SIGINT. */
function serverAction<S extends ConfigScope>(scope: S, loggerName: string, start: (config: ConfigOf<S>, logger: Logger) => Promise<{ stop(): Promise<void> }>) {
  return async (_o: unknown, cmd: Command) => {
    let config: ConfigOf<S>;
    try {
      config = loadConfig(scope, { env: process.env, flags: flagsOf(cmd) });
    } catch (err) {
      fail(err);
    }
    const logger = createRootLogger(config.logLevel, loggerName);
    try {
      const running = await start(config, logger);
      onSignals(() => running.stop());
    } catch (err) {
      logger.fatal({ err }, 'failed to start');
      fail(err);
    }
  };
}

withConfigOptions(program.command('serve').description('Run the authority (gRPC + HTTP).'), 'authority').action(serverAction('authority', 'token-authority', runAuthority));
withConfigOptions(program.command('sidecar').description('Run a sidecar verifier: Verify and Envoy ext_authz Check, answered locally.'), 'sidecar').action(serverAction('sidecar', 'token-authority-sidecar', runSidecar));

const keys = program.command('keys').description('Inspect and rotate signing keys (works on the key store of TA_KEY_STORE; running authorities pick changes up within seconds).');
withConfigOptions(keys.command('list').description('List keys with their state (read-only; never private material).'), 'authority').action(async (_o, cmd: Command) => {
  try {
    const config = loadConfig('authority', { env: process.env, flags: flagsOf(cmd) });
    const store = await createKeyStore(config, silentLogger, { readOnly: true });
    try {
      const doc = await store.load();
      if (!doc) {
        process.stdout.write(`no keys in ${config.keyStore === 'redis' ? 'Redis' : config.keyDir} yet (the authority creates them on first start)\n`);
        return;
      }
      printKeys(doc.keys);
    } finally {
      await store.close?.();
    }
  } catch (err) {
    fail(err);
  }
});

withConfigOptions(keys.command('rotate').description('Rotate now: next → active, active → retired, new next.'), 'authority').action(async (_o, cmd: Command) => {
  try {
    const config = loadConfig('authority', { env: process.env, flags: flagsOf(cmd) });
    const manager = await createKeyManager(config, silentLogger, 'command');
    await manager.start();
    const active = await manager.rotate();
    process.stdout.write(`rotated: ${active.kid} (${active.alg}) is now active\n`);
    printKeys(manager.list());
    await manager.stop();
  } catch (err) {
    fail(err);
  }
});

withConfigOptions(
  keys.command('seal').description('Encrypt a plaintext keys.json under the key-encryption key, once, after setting a KEK for an existing file key store (with a KEK set, the authority refuses a plaintext key file). Also re-encrypts one sealed under a previous KEK.'),
  'authority',
).action(async (_o, cmd: Command) => {
  try {
    const config = loadConfig('authority', { env: process.env, flags: flagsOf(cmd) });
    const { outcome, path, kekId } = await sealKeyFile(config);
    const said = {
      sealed: `encrypted the private keys in ${path} under key-encryption key ${kekId}`,
      resealed: `re-encrypted ${path} under the current key-encryption key ${kekId}`,
      unchanged: `${path} is already encrypted under key-encryption key ${kekId} (or does not exist yet): nothing to do`,
    }[outcome];
    process.stdout.write(`${said}\n`);
  } catch (err) {
    fail(err);
  }
});

function printKeys(list: ReadonlyArray<{ kid: string; alg: string; state: string; createdAt: number; removeAfter?: number | undefined }>): void {
  for (const k of list) {
    process.stdout.write(`${k.kid}\t${k.alg}\t${k.state}\tcreated ${new Date(k.createdAt).toISOString()}${k.removeAfter ? `\tremove after ${new Date(k.removeAfter).toISOString()}` : ''}\n`);
  }
}

/** What the client commands take: the address as the server takes it, and TLS files. */
type ClientOptions = { grpcAddr?: string; address?: string } & ClientTlsFiles;

/**
 * The gRPC address of the client commands, read the way `serve` reads its own: --grpc-addr, else
 * TA_GRPC_ADDR, else the default, validated by the same row of the options table. (`--address`
 * is the older spelling of the flag.) A bad one exits 2, naming the variable and the flag.
 */
function clientAddress(o: ClientOptions): string {
  try {
    return loadSetting('grpcAddr', { env: process.env, flags: { grpcAddr: o.grpcAddr ?? o.address } })!.text;
  } catch (err) {
    fail(err);
  }
}

/** Operator commands that call a running authority over gRPC. */
function client(o: ClientOptions) {
  let creds;
  try {
    creds = clientCredentials(o);
  } catch (err) {
    fail(err);
  }
  return new TokenAuthorityServiceClient(clientAddress(o), creds);
}
function call<Req, Res>(fn: (req: Req, md: Metadata, cb: (err: Error | null, res: Res) => void) => unknown, req: Req): Promise<Res> {
  return new Promise((resolve, reject) => fn(req, new Metadata(), (err, res) => (err ? reject(err) : resolve(res))));
}
const grpcAddrRow = OPTIONS.find((o) => o.key === 'grpcAddr')!;
/** The address flag of the client commands: the server's own flag and variable (clientAddress). */
const addressOptions = () => [
  new Option(`${grpcAddrRow.flag} <host:port>`, `gRPC address of the authority (or a sidecar), as \`serve\` takes it: this flag, else $${grpcAddrRow.env}, else ${grpcAddrRow.default}`),
  new Option('--address <host:port>', `the older spelling of ${grpcAddrRow.flag}`).hideHelp(),
];
/** For an authority serving TLS: its CA, and a client certificate where it requires mutual TLS. */
const tlsOptions = () => [
  new Option('--tls-ca <file>', 'PEM CA that signed the authority\'s certificate (TLS; default: system roots when --tls-cert is given)'),
  new Option('--tls-cert <file>', 'PEM client certificate (mutual TLS; its identity must be in the authority\'s client policy for privileged calls)'),
  new Option('--tls-key <file>', 'PEM private key of --tls-cert'),
];
const print = (value: unknown) => process.stdout.write(JSON.stringify(value, null, 2) + '\n');
/** An answer in the proto3 JSON mapping: enums by name (`VERIFY_FAILURE_REASON_REVOKED`), times as RFC 3339. */
const printMessage = <T>(type: { toJSON(message: T): unknown }, message: T, always: Record<string, unknown> = {}) => print({ ...always, ...(type.toJSON(message) as object) });

program
  .command('issue')
  .description('Issue a token pair (privileged: loopback or mutual TLS).')
  .requiredOption('--subject <sub>', 'subject')
  .requiredOption('--audience <aud...>', 'audience(s)')
  .option('--scope <scope...>', 'scopes', [])
  .option('--ttl <seconds>', 'access-token TTL in seconds', '0')
  .addOption(new Option('--jkt <thumbprint>', 'bind the token to a DPoP key: its RFC 7638 SHA-256 thumbprint').conflicts('x5tS256'))
  .option('--x5t-s256 <thumbprint>', 'bind the token to a client certificate: base64url SHA-256 of its DER')
  .addOption(addressOptions()[0]!).addOption(addressOptions()[1]!)
  .addOption(tlsOptions()[0]!).addOption(tlsOptions()[1]!).addOption(tlsOptions()[2]!)
  .action(async (o: { subject: string; audience: string[]; scope: string[]; ttl: string; jkt?: string; x5tS256?: string } & ClientOptions) => {
    const c = client(o);
    const confirmation = o.jkt !== undefined ? { binding: { $case: 'jkt' as const, jkt: o.jkt } } : o.x5tS256 !== undefined ? { binding: { $case: 'x5tS256' as const, x5tS256: o.x5tS256 } } : undefined;
    try {
      printMessage(IssueResponse, await call(c.issue.bind(c), { subject: o.subject, audience: o.audience, scopes: o.scope, extraClaims: {}, accessTtlSeconds: Number(o.ttl), clientId: '', confirmation }));
    } catch (err) {
      fail(err);
    } finally {
      c.close();
    }
  });

program
  .command('verify')
  .description('Verify an access token at the authority (or a sidecar).')
  .argument('<token>', 'access token')
  .option('--audience <aud>', 'required audience', '')
  .option('--scope <scope...>', 'required scopes', [])
  .option('--client-cert <file>', 'the presenting client\'s certificate (PEM or DER), for a certificate-bound token')
  .option('--dpop-proof <proof>', 'the DPoP header of the request, for a DPoP-bound token (with --http-method and --http-uri)', '')
  .option('--http-method <method>', 'the method of the request the proof is for', '')
  .option('--http-uri <uri>', 'the absolute URI of the request the proof is for', '')
  .addOption(addressOptions()[0]!).addOption(addressOptions()[1]!)
  .addOption(tlsOptions()[0]!).addOption(tlsOptions()[1]!).addOption(tlsOptions()[2]!)
  .action(async (token: string, o: { audience: string; scope: string[]; clientCert?: string; dpopProof: string; httpMethod: string; httpUri: string } & ClientOptions) => {
    const c = client(o);
    try {
      const clientCertificate = o.clientCert !== undefined ? readFileSync(o.clientCert) : Buffer.alloc(0);
      const answer = await call<VerifyRequest, VerifyResponse>(c.verify.bind(c), { token, audience: o.audience, requiredScopes: o.scope, clientCertificate, dpopProof: o.dpopProof, httpMethod: o.httpMethod, httpUri: o.httpUri });
      printMessage(VerifyResponse, answer, { valid: answer.valid });
    } catch (err) {
      fail(err);
    } finally {
      c.close();
    }
  });

program
  .command('revoke')
  .description('Revoke a token, a session or every token of a subject.')
  .addOption(new Option('--token <token>', 'an access or refresh token').conflicts(['session', 'subject', 'tokenId']))
  .addOption(new Option('--session <sid>', 'a session id (privileged)').conflicts(['subject', 'tokenId']))
  .addOption(new Option('--subject <sub>', 'every token of this subject (privileged)').conflicts(['tokenId']))
  .option('--token-id <jti>', 'one access token by jti (privileged)')
  .option('--reason <text>', 'reason recorded in the log', '')
  .addOption(addressOptions()[0]!).addOption(addressOptions()[1]!)
  .addOption(tlsOptions()[0]!).addOption(tlsOptions()[1]!).addOption(tlsOptions()[2]!)
  .action(async (o: { token?: string; session?: string; subject?: string; tokenId?: string; reason: string; } & ClientOptions) => {
    const target = o.token !== undefined ? { $case: 'token' as const, token: o.token }
      : o.session !== undefined ? { $case: 'sessionId' as const, sessionId: o.session }
      : o.subject !== undefined ? { $case: 'subject' as const, subject: o.subject }
      : o.tokenId !== undefined ? { $case: 'tokenId' as const, tokenId: o.tokenId }
      : fail(invalidArgument('one of --token, --session, --subject or --token-id is required'));
    const c = client(o);
    try {
      printMessage(RevokeResponse, await call(c.revoke.bind(c), { target, reason: o.reason }));
    } catch (err) {
      fail(err);
    } finally {
      c.close();
    }
  });

program
  .command('status')
  .description('The fleet at a glance: head sequence, key set, and every verifier seen within its receipt retention, live or stale (from the authority\'s GET /fleet). Exit status: 0 every verifier live, 1 any stale, 2 the authority could not be asked.')
  .addOption(new Option('--url <url>', 'the authority\'s HTTP base URL').default(process.env.TA_AUTHORITY_URL ?? `http://${process.env.TA_HTTP_ADDR ?? '127.0.0.1:8080'}`, '$TA_AUTHORITY_URL, else http://$TA_HTTP_ADDR'))
  .option('--json', 'print the /fleet document as JSON')
  .option('--timeout <ms>', 'give up after this long', '5000')
  .addOption(tlsOptions()[0]!).addOption(tlsOptions()[1]!).addOption(tlsOptions()[2]!)
  .action(async (o: { url: string; json?: boolean; timeout: string } & ClientTlsFiles) => {
    let status: FleetStatus;
    try {
      status = await fetchFleetStatus(o.url, Number(o.timeout), o);
    } catch (err) {
      process.stderr.write(`token-authority: status: ${errorMessage(err)}\n`);
      process.exit(2);
    }
    process.stdout.write(o.json ? JSON.stringify(status, null, 2) + '\n' : formatFleetStatus(status));
    process.exit(status.stale > 0 ? 1 : 0);
  });

/** GET <url>/fleet (HTTPS with the given CA / client certificate when the URL is https://). */
function fetchFleetStatus(base: string, timeoutMs: number, tls: ClientTlsFiles): Promise<FleetStatus> {
  let target: URL;
  try {
    target = new URL(base.replace(/\/+$/, '') + '/fleet');
    if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new Error('protocol');
  } catch {
    return Promise.reject(new Error(`--url must be an http:// or https:// URL, got "${redactUrl(base)}"`));
  }
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) return Promise.reject(new Error('--timeout must be a positive number of milliseconds'));
  const shown = redactUrl(target.toString());
  return new Promise((resolve, reject) => {
    const opts = target.protocol === 'https:'
      ? { ...(tls.tlsCa ? { ca: readFileSync(tls.tlsCa) } : {}), ...(tls.tlsCert ? { cert: readFileSync(tls.tlsCert) } : {}), ...(tls.tlsKey ? { key: readFileSync(tls.tlsKey) } : {}) }
      : {};
    const req = (target.protocol === 'https:' ? httpsGet : httpGet)(target, { ...opts, timeout: timeoutMs, headers: { accept: 'application/json' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
        if (body.length > 16 * 1024 * 1024) req.destroy(new Error(`${shown}: answer too large`));
      });
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`${shown} answered ${res.statusCode}: ${body.slice(0, 300)}`));
        try {
          const doc = JSON.parse(body) as FleetStatus;
          if (doc?.v !== 1 || !Array.isArray(doc.verifiers)) throw new Error('not a fleet status document');
          resolve(doc);
        } catch (err) {
          reject(new Error(`${shown}: ${errorMessage(err)}`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${shown}: no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => reject(new Error(`${shown}: ${err.message}`)));
  });
}

program
  .command('config')
  .description('Print every setting with its env var, flag and default.')
  .option('--markdown', 'as a Markdown table (the one in docs/configuration.md)')
  .action((o: { markdown?: boolean }) => {
    const shown = (d: string | undefined) => (d === undefined || d === '' ? '—' : `\`${d}\``);
    const rows = OPTIONS.map((x) => [
      `\`${x.env}\``,
      `\`${x.flag}\``,
      x.sidecarDefault ? `${shown(x.default)} (sidecar ${shown(x.sidecarDefault)})` : shown(x.default),
      x.scope,
      x.description.replace(/\|/g, '\\|'),
    ]);
    if (o.markdown) {
      process.stdout.write('| env | flag | default | used by | meaning |\n| --- | --- | --- | --- | --- |\n');
      for (const r of rows) process.stdout.write(`| ${r.join(' | ')} |\n`);
    } else for (const r of rows) process.stdout.write(`${r.slice(0, 3).join('  ')}\n    ${r[4]}\n`);
  });

program.parseAsync(process.argv).catch(fail);
