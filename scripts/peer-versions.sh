#!/usr/bin/env bash
# Type-checks the library and runs the test suite against other versions of its Effect peer dependencies, in a
# scratch copy of the repository: the repository's lock file and node_modules are not touched.
#   scripts/peer-versions.sh lowest   the lowest versions the peer ranges allow: effect 3.22.1, @effect/platform
#                                     0.97.1 (and the @effect/* dev packages of that release)
#   scripts/peer-versions.sh latest   the latest Effect 3 line: effect@^3, @effect/platform@^0.97, ...
# Further arguments go to vitest (a file or a filter, for a quicker local run); CI runs the whole suite.
# The peer ranges in package.json must say what this proves: keep the "lowest" set equal to their lower bounds.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
mode="${1:-}"
shift || true
case "$mode" in
  lowest)
    versions=(effect@3.22.1 @effect/platform@0.97.1 @effect/platform-node@0.108.1 @effect/vitest@0.30.0
      @effect/opentelemetry@0.64.0)
    ;;
  latest)
    versions=(effect@^3 @effect/platform@^0.97 @effect/platform-node@^0.108 @effect/vitest@^0.30
      @effect/opentelemetry@^0.64)
    ;;
  *)
    echo "usage: scripts/peer-versions.sh lowest|latest" >&2
    exit 2
    ;;
esac
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

# The lower bounds of the peer ranges must be the "lowest" set above.
node -e '
  const peers = require(process.argv[1]).peerDependencies
  const want = { effect: "^3.22.1", "@effect/platform": "^0.97.1" }
  for (const [name, range] of Object.entries(want))
    if (peers[name] !== range) throw new Error(`peerDependencies.${name} is ${peers[name]}; this script proves ${range}`)
' "$repo/package.json"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar -cf - 2>/dev/null) |
  tar -C "$work" -xf -
cd "$work"
echo "== peer-versions $mode: ${versions[*]} (in $work)"
# Pins the chosen versions as dev dependencies of the scratch copy and resolves its tree afresh (every other dev
# dependency is pinned to an exact version in package.json; the repository's own lock file is not used here).
rm -f package-lock.json
for spec in "${versions[@]}"; do
  name="${spec%@*}"
  npm pkg set "devDependencies.$name=${spec##*@}"
done
npm install --no-audit --no-fund --loglevel=error >/dev/null
for spec in "${versions[@]}"; do
  name="${spec%@*}"
  echo "$name $(node -p "require('$name/package.json').version")"
done
node -e 'if (!require("effect/package.json").version.startsWith("3.")) throw new Error("not Effect 3")'
npx tsc -p tsconfig.json --noEmit
# Without arguments: the same two phases as npm test (the store tests that start real processes run on their own,
# one file at a time, so the machine's load from the other files cannot starve them).
if [ "$#" -gt 0 ]; then
  npx vitest run "$@"
else
  npm run test:unit
  npm run test:processes
fi
