#!/usr/bin/env bash
# Builds the published files: an ES module build in dist/esm and a CommonJS build in dist/cjs (the way
# `effect` 3 ships), each with its declarations, declaration maps and source maps pointing into src/.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf dist
npx tsc -p tsconfig.build.json
npx tsc -p tsconfig.build.cjs.json
# The package is "type": "module"; this marks the CommonJS build's .js and .d.ts files as CommonJS.
echo '{ "type": "commonjs" }' >dist/cjs/package.json
