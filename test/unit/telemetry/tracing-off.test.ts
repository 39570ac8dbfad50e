import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../../../src/', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : name.endsWith('.ts') ? [path] : [];
  });
}

/**
 * Tracing off costs a process nothing to load: the OpenTelemetry SDK, exporters and API are
 * imported by one file, and that file only through create-tracing.ts' dynamic import when the
 * OTEL_* settings turn tracing on.
 */
describe('tracing off loads no OpenTelemetry code', () => {
  it('only src/telemetry/otel-tracing.ts imports @opentelemetry packages', () => {
    const importers = sources(SRC)
      .filter((f) => /from\s+['"]@opentelemetry\/|import\(\s*['"]@opentelemetry\//.test(readFileSync(f, 'utf8')))
      .map((f) => relative(SRC, f));
    assert.deepEqual(importers, ['telemetry/otel-tracing.ts']);
  });

  it('otel-tracing.ts is reached only by a dynamic import, in create-tracing.ts', () => {
    const importers = sources(SRC)
      .filter((f) => readFileSync(f, 'utf8').includes('otel-tracing.js'))
      .map((f) => relative(SRC, f));
    assert.deepEqual(importers, ['telemetry/create-tracing.ts']);
    assert.match(readFileSync(join(SRC, 'telemetry/create-tracing.ts'), 'utf8'), /await import\('\.\/otel-tracing\.js'\)/);
    assert.doesNotMatch(readFileSync(join(SRC, 'telemetry/create-tracing.ts'), 'utf8'), /^import\s(?!type\s)[^;]*['"]\.\/otel-tracing\.js['"]/m, 'no static import');
  });
});
