#!/usr/bin/env bash
# Fails when src/gen is not exactly what `buf generate` makes from proto/ now.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
npx --no-install buf generate -o "$tmp" >/dev/null
if ! diff -r "$tmp/src/gen" src/gen >/dev/null; then
  echo "src/gen is stale: run 'npm run gen' and commit the result" >&2
  diff -r "$tmp/src/gen" src/gen | head -20 >&2
  exit 1
fi
echo "generated stubs current"
