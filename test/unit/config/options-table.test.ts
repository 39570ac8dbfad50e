import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CLI } from '../../helpers/cli-process.js';

describe('docs/configuration.md configuration table', () => {
  it('is exactly what `token-authority config --markdown` prints', () => {
    const readme = readFileSync(fileURLToPath(new URL('../../../../docs/configuration.md', import.meta.url)), 'utf8');
    const m = /<!-- config-table:start[^\n]*-->\n([\s\S]*?)<!-- config-table:end -->/.exec(readme);
    assert.ok(m, 'docs/configuration.md has the config-table markers');
    const generated = execFileSync(process.execPath, [CLI, 'config', '--markdown'], { encoding: 'utf8' });
    assert.equal(m[1], generated, 'docs/configuration.md table is stale: paste the output of `node dist/src/cli.js config --markdown`');
  });
});
