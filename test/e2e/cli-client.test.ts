import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type CliProcess } from '../helpers/cli-process.js';

/** Runs a client command to its end; its stdout parsed as JSON. */
async function run(args: string[], env: Record<string, string>): Promise<{ code: number | string; out: Record<string, unknown>; stderr: string }> {
  const p = runCli(args, env);
  const code = await p.exited;
  let out: Record<string, unknown> = {};
  try {
    out = JSON.parse(p.stdout()) as Record<string, unknown>;
  } catch {
    // not JSON: asserted by the caller through `code` and `stderr`
  }
  return { code, out, stderr: p.stderr() };
}

describe('token-authority issue | verify | revoke against a running authority (real processes)', function () {
  this.timeout(60_000);
  let keyDir: string;
  let server: CliProcess;
  let addr: string;

  before(async () => {
    keyDir = await mkdtemp(join(tmpdir(), 'ta-cli-client-'));
    server = runCli(['serve'], { TA_GRPC_ADDR: '127.0.0.1:0', TA_HTTP_ADDR: '127.0.0.1:0', TA_KEY_DIR: keyDir, TA_LOG_LEVEL: 'info' });
    const serving = await server.waitForLine((l) => l.msg === 'token authority serving');
    addr = `127.0.0.1:${serving.grpcPort as number}`;
  });
  after(async () => {
    server?.kill('SIGKILL');
    await server?.exited;
    await rm(keyDir, { recursive: true, force: true });
  });

  it('take the address as the server does (TA_GRPC_ADDR, or --grpc-addr over it) and print enum names, not numbers', async () => {
    // TA_GRPC_ADDR alone.
    const issued = await run(['issue', '--subject', 'alice', '--audience', 'orders'], { TA_GRPC_ADDR: addr });
    assert.equal(issued.code, 0, issued.stderr);
    const accessToken = issued.out.accessToken as string;
    assert.equal(typeof accessToken, 'string');
    assert.match(String(issued.out.accessExpiresAt), /^\d{4}-\d\d-\d\dT/, 'times as RFC 3339');

    // The flag wins over the variable (which points nowhere).
    const valid = await run(['verify', accessToken, '--grpc-addr', addr, '--audience', 'orders'], { TA_GRPC_ADDR: '127.0.0.1:1' });
    assert.equal(valid.code, 0, valid.stderr);
    assert.equal(valid.out.valid, true);
    assert.equal((valid.out.claims as Record<string, unknown>).subject, 'alice');

    const revoked = await run(['revoke', '--token', accessToken, '--reason', 'test'], { TA_GRPC_ADDR: addr });
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal(typeof revoked.out.kind, 'string', `kind by name: ${JSON.stringify(revoked.out)}`);
    assert.match(revoked.out.kind as string, /^REVOCATION_KIND_[A-Z]+$/);

    const rejected = await run(['verify', accessToken], { TA_GRPC_ADDR: addr });
    assert.equal(rejected.code, 0, rejected.stderr);
    assert.equal(rejected.out.valid, false, 'valid is printed even when false');
    assert.equal(rejected.out.reason, 'VERIFY_FAILURE_REASON_REVOKED');

    // The older --address spelling still works.
    const old = await run(['verify', accessToken, '--address', addr], {});
    assert.equal(old.out.reason, 'VERIFY_FAILURE_REASON_REVOKED');
  });

  it('a bad address is a configuration error naming the variable and the flag (exit 2)', async () => {
    const bad = await run(['verify', 'x'], { TA_GRPC_ADDR: 'nowhere' });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /TA_GRPC_ADDR \(--grpc-addr\): "nowhere" is not host:port/);
    const badFlag = await run(['issue', '--subject', 'a', '--audience', 'b', '--grpc-addr', 'also-nowhere'], { TA_GRPC_ADDR: addr });
    assert.equal(badFlag.code, 2);
    assert.match(badFlag.stderr, /"also-nowhere" is not host:port/);
  });
});
