import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../../../', import.meta.url));
const LAYERS = ['unit', 'contract', 'integration', 'e2e', 'fault', 'security'];

function testFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return testFiles(path);
    return name.endsWith('.test.ts') ? [relative(join(REPO, 'test'), path)] : [];
  });
}

describe('test layers', () => {
  it('every test file belongs to exactly one layer, and each layer has its own npm script', () => {
    const scripts = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    for (const layer of LAYERS) assert.match(scripts[`test:${layer}`] ?? '', new RegExp(`dist/test/${layer}/\\*\\*/\\*\\.test\\.js`), `npm run test:${layer}`);
    const outside = testFiles(join(REPO, 'test')).filter((f) => !LAYERS.includes(f.split('/')[0]!));
    assert.deepEqual(outside, [], 'these tests run in no layer script');
  });
});
