import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../../../', import.meta.url));
const SCRIPT = join(REPO, 'scripts/check-layering.mjs');

const PACKAGE = {
  name: 'fixture',
  type: 'module',
  dependencies: { pino: '*', ioredis: '*', '@grpc/grpc-js': '*', 'prom-client': '*' },
  exports: { '.': './dist/src/verifier/index.js', './grpc': './dist/src/verifier/grpc/index.js', './redis': './dist/src/store/redis-source.js' },
};

/** A small tree that follows every rule: each probe below changes one thing in it. */
const CLEAN: Record<string, string> = {
  'src/shared/errors.ts': 'export const E = 1;\n',
  'src/verifier/index.ts': "import { E } from '../shared/errors.js';\nexport * from './verify.js';\nexport const e = E;\n",
  'src/verifier/verify.ts': '/** Nothing here imports pino (a comment: import pino from "pino"). */\nexport const v = 1;\n',
  'src/verifier/grpc/index.ts': "import { Metadata } from '@grpc/grpc-js';\nexport * from '../index.js';\nexport const m = Metadata;\n",
  'src/store/redis-source.ts': "import Redis from 'ioredis';\nimport { E } from '../shared/errors.js';\nexport const r = [Redis, E];\n",
  'src/telemetry/logger.ts': "import pino from 'pino';\nimport { Registry } from 'prom-client';\nexport const l = [pino, Registry];\n",
  'src/gen/api.ts': "import { Client } from '@grpc/grpc-js';\nexport const c = Client;\n",
  'src/authority/server.ts': "import { c } from '../gen/api.js';\nimport { l } from '../telemetry/logger.js';\nimport { v } from '../verifier/index.js';\nexport const s = [c, l, v];\n",
  'src/cli.ts': "import { s } from './authority/server.js';\nvoid s;\n",
};

function check(changes: Record<string, string | undefined>, pkg: object = PACKAGE): { status: number | null; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'layering-'));
  try {
    const tree: Record<string, string | undefined> = { ...CLEAN, ...changes, 'package.json': JSON.stringify(pkg) };
    for (const [path, text] of Object.entries(tree)) {
      if (text === undefined) continue;
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), text);
    }
    const run = spawnSync(process.execPath, [SCRIPT, dir], { encoding: 'utf8' });
    return { status: run.status, out: run.stdout + run.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function assertFails(result: { status: number | null; out: string }, ...messages: RegExp[]): void {
  assert.equal(result.status, 1, result.out);
  for (const m of messages) assert.match(result.out, m);
}

describe('scripts/check-layering.mjs', () => {
  it('passes a clean tree (and this repository)', () => {
    const clean = check({});
    assert.equal(clean.status, 0, clean.out);
    assert.match(clean.out, /layering ok: 9 files, 3 package entries/);
    const repo = spawnSync(process.execPath, [SCRIPT], { encoding: 'utf8' });
    assert.equal(repo.status, 0, repo.stdout + repo.stderr);
  });

  it('probe 1: a side-effect import counts (upward, and of a banned package)', () => {
    assertFails(check({ 'src/verifier/verify.ts': "import '../authority/server.js';\nexport const v = 1;\n" }), /src\/verifier\/verify\.ts imports src\/authority\/server\.ts: verifier may not depend on authority/);
    assertFails(check({ 'src/verifier/verify.ts': "import 'pino';\nexport const v = 1;\n" }), /src\/verifier\/verify\.ts imports pino: verifier must not depend on it/, /package entry "\." pulls in pino/);
    assertFails(check({ 'src/verifier/verify.ts': "export const v = () => import('../sidecar/x.js');\n", 'src/sidecar/x.ts': 'export {};\n' }), /verifier may not depend on sidecar/);
  });

  it('probe 2: a folder in no layer is an error, and is still followed from an entry', () => {
    assertFails(check({ 'src/plugins/extra.ts': 'export const p = 1;\n' }), /src\/plugins is in no layer/);
    assertFails(
      check({ 'src/plugins/extra.ts': "import pino from 'pino';\nexport const p = pino;\n", 'src/verifier/verify.ts': "import { p } from '../plugins/extra.js';\nexport const v = p;\n" }),
      /src\/plugins is in no layer/,
      /package entry "\." pulls in pino: src\/verifier\/index\.ts → src\/verifier\/verify\.ts → src\/plugins\/extra\.ts → pino/,
    );
  });

  it('probe 3: a banned package pulled in transitively, through files each allowed on its own', () => {
    assertFails(
      check({
        'src/store/redis-source.ts': "import Redis from 'ioredis';\nimport { count } from './redis-metrics.js';\nexport const r = [Redis, count];\n",
        'src/store/redis-metrics.ts': "import { Counter } from 'prom-client';\nexport const count = Counter;\n",
      }),
      /package entry "\.\/redis" pulls in prom-client: src\/store\/redis-source\.ts → src\/store\/redis-metrics\.ts → prom-client/,
    );
  });

  it('probe 4: src/gen is followed (export * of generated stubs that import grpc-js)', () => {
    assertFails(
      check({ 'src/verifier/index.ts': "export * from './verify.js';\nexport * from '../gen/api.js';\n" }),
      /package entry "\." pulls in @grpc\/grpc-js: src\/verifier\/index\.ts → src\/gen\/api\.ts → @grpc\/grpc-js/,
    );
    // './grpc' may use grpc-js, and reaching it through gen is fine there.
    const viaGrpc = check({ 'src/verifier/grpc/index.ts': "export * from '../../gen/api.js';\nexport * from '../index.js';\n" });
    assert.equal(viaGrpc.status, 0, viaGrpc.out);
  });

  it('refuses an exports entry it has no rule for, an import of a missing file and an undeclared package', () => {
    assertFails(check({}, { ...PACKAGE, exports: { ...PACKAGE.exports, './extra': './dist/src/verifier/verify.js' } }), /exports "\.\/extra" is not in LIBRARY_ENTRIES/);
    assertFails(check({ 'src/verifier/verify.ts': "export * from './missing.js';\n" }), /imports \.\/missing\.js: no such source file/);
    assertFails(check({ 'src/telemetry/logger.ts': "import x from 'left-pad';\nexport const l = x;\n" }), /left-pad is not in package\.json dependencies/);
  });
});
