import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { runCli, type CliProcess } from '../../helpers/cli-process.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';
import { standardPki } from '../../helpers/pki.js';
import { TEST_POLICY, writePolicy } from './security-fixtures.js';

describe('token-authority serve with TLS and a client policy (real processes)', function () {
  this.timeout(30_000);
  let pki: ReturnType<typeof standardPki>;
  let keyDir: string;
  let policy: string;
  before(async () => {
    pki = standardPki();
    keyDir = await mkdtemp(join(tmpdir(), 'ta-cli-tls-'));
    policy = writePolicy(pki.pki.dir, TEST_POLICY);
  });
  after(async () => {
    await rm(keyDir, { recursive: true, force: true });
    pki?.cleanup();
  });

  const serve = (env: Record<string, string>) =>
    runCli(['serve'], { TA_GRPC_ADDR: '127.0.0.1:0', TA_HTTP_ADDR: '127.0.0.1:0', TA_KEY_DIR: keyDir, TA_LOG_LEVEL: 'info', ...env });

  describe('refuses to start, exit 2, with a message naming the problem', () => {
    it('when a TLS file is missing', async () => {
      const p = serve({ TA_TLS_CERT: join(pki.pki.dir, 'no-such-cert.pem'), TA_TLS_KEY: pki.server.key });
      assert.equal(await p.exited, 2);
      assert.match(p.stderr(), /^token-authority: cannot read TA_TLS_CERT .*no-such-cert\.pem: ENOENT/m);
    });

    it('when the key does not belong to the certificate', async () => {
      const p = serve({ TA_TLS_CERT: pki.server.cert, TA_TLS_KEY: pki.login.key });
      assert.equal(await p.exited, 2);
      assert.match(p.stderr(), /TA_TLS_KEY .*login\.key is not the private key of the certificate in TA_TLS_CERT/);
    });

    it('when a file is not PEM', async () => {
      const p = serve({ TA_TLS_CERT: pki.server.cert, TA_TLS_KEY: pki.server.key, TA_TLS_CLIENT_CA: policy });
      assert.equal(await p.exited, 2);
      assert.match(p.stderr(), /TA_TLS_CLIENT_CA .*client-policy\.json is not a PEM certificate/);
    });

    it('when TA_CLIENT_POLICY is set without mutual TLS', async () => {
      const p = serve({ TA_TLS_CERT: pki.server.cert, TA_TLS_KEY: pki.server.key, TA_CLIENT_POLICY: policy });
      assert.equal(await p.exited, 2);
      assert.match(p.stderr(), /TA_CLIENT_POLICY \(--client-policy\): .*needs mutual TLS: set TA_TLS_CLIENT_CA/);
    });

    it('when the client policy is invalid, naming the JSON path', async () => {
      const bad = writePolicy(pki.pki.dir, { version: 1, clients: { 'spiffe://corp/login': { revoke: ['everything'] } } }, 'bad-policy.json');
      const p = serve({ TA_TLS_CERT: pki.server.cert, TA_TLS_KEY: pki.server.key, TA_TLS_CLIENT_CA: pki.ca.cert, TA_CLIENT_POLICY: bad });
      assert.equal(await p.exited, 2);
      assert.match(p.stderr(), /client policy .*bad-policy\.json is invalid \(1 problem\):\n\s+- \$\.clients\["spiffe:\/\/corp\/login"\]\.revoke\[0\]: /);
    });
  });

  describe('serving mutual TLS; the operator commands take --tls-ca/--tls-cert/--tls-key', () => {
    let server: CliProcess;
    let address: string;
    before(async () => {
      server = serve({ TA_TLS_CERT: pki.server.cert, TA_TLS_KEY: pki.server.key, TA_TLS_CLIENT_CA: pki.ca.cert, TA_CLIENT_POLICY: policy });
      const line = await server.waitForLine((l) => l.msg === 'token authority serving');
      address = `localhost:${line.grpcPort as number}`;
    });
    after(async () => {
      server?.kill('SIGTERM');
      await server?.exited;
    });

    const cli = async (args: string[], cert?: { cert: string; key: string }) => {
      const tls = cert ? ['--tls-ca', pki.ca.cert, '--tls-cert', cert.cert, '--tls-key', cert.key] : [];
      const p = runCli([...args, '--address', address, ...tls]);
      return { code: await p.exited, stdout: p.stdout(), stderr: p.stderr() };
    };

    it('logs mutual TLS at start, and no insecure-mode warning', () => {
      assert.ok(server.lines.some((l) => l.msg === 'mutual TLS: callers are identified by their client certificate' && l.clients === 2));
      assert.ok(!server.lines.some((l) => /INSECURE/.test(String(l.msg))));
    });

    it('issue with the login certificate, revoke by subject with the ops certificate', async () => {
      const issued = await cli(['issue', '--subject', 'alice', '--audience', 'orders', '--scope', 'read'], pki.login);
      assert.equal(issued.code, 0, issued.stderr);
      const pair = JSON.parse(issued.stdout) as { accessToken: string; sessionId: string };
      assert.ok(pair.accessToken.split('.').length === 3);
      const revoked = await cli(['revoke', '--subject', 'alice', '--reason', 'test'], pki.opsCli);
      assert.equal(revoked.code, 0, revoked.stderr);
      assert.ok(Number((JSON.parse(revoked.stdout) as { sequence: string | number }).sequence) > 0);
      const verified = await cli(['verify', pair.accessToken], pki.opsCli);
      assert.equal(verified.code, 0, verified.stderr);
      assert.equal((JSON.parse(verified.stdout) as { valid: boolean }).valid, false);
    });

    it('a certificate without the right gets PERMISSION_DENIED naming it', async () => {
      const r = await cli(['revoke', '--subject', 'alice'], pki.login);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /PERMISSION_DENIED: client spiffe:\/\/corp\/login may not revoke:subject; allowed: issue, revoke:session/);
    });

    it('without a client certificate the connection is refused', async () => {
      const r = await cli(['issue', '--subject', 'alice', '--audience', 'orders']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /UNAVAILABLE/);
    });

    it('--tls-cert without --tls-key is a usage error', async () => {
      const p = runCli(['issue', '--subject', 'a', '--audience', 'orders', '--address', address, '--tls-cert', pki.login.cert]);
      assert.equal(await p.exited, 2);
      assert.match(p.stderr(), /--tls-cert and --tls-key must be given together/);
    });
  });

  describe('worker mode (TA_WORKERS=2): SIGHUP to the primary reloads the policy in every worker', () => {
    let redis: RedisServer;
    before(async () => {
      redis = await startRedis();
    });
    after(() => redis?.stop());

    it('relays SIGHUP, and each worker reloads', async () => {
      // Forked workers cannot share port 0: pick a free port first.
      const port = await new Promise<number>((resolve) => {
        const s = createServer().listen(0, '127.0.0.1', () => {
          const p = (s.address() as { port: number }).port;
          s.close(() => resolve(p));
        });
      });
      const workerPolicy = writePolicy(pki.pki.dir, TEST_POLICY, 'worker-policy.json');
      const p = serve({
        TA_WORKERS: '2', TA_REDIS_URL: redis.url, TA_GRPC_ADDR: `127.0.0.1:${port}`, TA_ISSUER: 'https://issuer.test',
        TA_TLS_CERT: pki.server.cert, TA_TLS_KEY: pki.server.key, TA_TLS_CLIENT_CA: pki.ca.cert, TA_CLIENT_POLICY: workerPolicy,
      });
      try {
        await p.waitForLine((l) => l.msg === 'token authority serving' && l.workers === 2, 30_000);
        writePolicy(pki.pki.dir, { version: 1, clients: { 'spiffe://corp/stranger': { revoke: ['subject'] } } }, 'worker-policy.json');
        p.kill('SIGHUP');
        await p.waitForLine((l) => l.msg === 'client policy reloaded' && p.lines.filter((x) => x.msg === 'client policy reloaded').length === 2, 10_000);
        const reloaders = new Set(p.lines.filter((l) => l.msg === 'client policy reloaded').map((l) => l.pid));
        assert.equal(reloaders.size, 2, 'both workers reloaded');
        assert.ok(!reloaders.has(p.child.pid), 'the primary only relays');
        assert.equal(p.child.exitCode, null, 'SIGHUP did not end the primary');
      } finally {
        p.kill('SIGTERM');
        await p.exited;
      }
    });
  });
});
