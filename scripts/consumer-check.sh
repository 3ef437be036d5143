#!/usr/bin/env bash
# The package as a user gets it: packs this repository (`prepack` builds), installs the tarball into a fresh
# app outside the repository with the install commands of README.md and docs/ exactly as written (only the
# package name is replaced by the tarball; `ioredis` is not installed), then:
#   1. checks the tarball holds only what a user needs;
#   2. type-checks a file importing every public module (the root and each subpath) with `strict` and
#      `skipLibCheck: false`, under `module`/`moduleResolution` `nodenext` (an ES module and a CommonJS file)
#      and under `bundler`;
#   3. compiles the README quick start with `tsc` and runs it on plain `node`;
#   4. bundles the root import with esbuild for `node` (no `ioredis` installed), `neutral` and `browser`;
#   5. `require`s the package from a `.cjs` file and proves that one `effect` copy is loaded.
# Usage: scripts/consumer-check.sh [--keep] (--keep leaves the temporary app in place and prints its path).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
if [[ "${1:-}" == "--keep" ]]; then
  echo "consumer-check: the app stays in $work"
else
  trap 'rm -rf "$work"' EXIT
fi
step() { printf '\n== consumer-check: %s\n' "$*"; }
fail() {
  echo "consumer-check: FAILED: $*" >&2
  exit 1
}
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

step "npm pack (prepack builds dist/)"
(cd "$repo" && npm pack --pack-destination "$work" >"$work/pack.log" 2>&1) || {
  cat "$work/pack.log"
  fail "npm pack"
}
tarball="$(ls "$work"/effect-renewable-bearer-*.tgz)"
echo "$tarball"

step "the tarball holds dist/, src/, README.md, LICENSE and package.json, nothing else"
tar tzf "$tarball" | sed 's#^package/##' >"$work/files.txt"
unexpected="$(
grep -Ev '^(dist/(esm|cjs)/.+|src/.+\.ts|README\.md|LICENSE|package\.json)$' "$work/files.txt" || true)"
[[ -z "$unexpected" ]] || fail "unexpected files in the tarball: $unexpected"
for f in dist/esm/index.js dist/esm/index.d.ts dist/cjs/index.js dist/cjs/index.d.ts dist/cjs/package.json; do
  grep -qx "$f" "$work/files.txt" || fail "$f is missing from the tarball"
done

step "a fresh app; the install commands of the docs, as written"
app="$work/app"
mkdir "$app"
cd "$app"
npm init -y >/dev/null
npm pkg set type=module
npm pkg set private=true --json
# Every `npm install` / `npm i` line of a sh block in README.md and docs/*.md, except the one that installs
# ioredis (the Redis store's optional peer: the checks below prove the rest works without it).
commands="$(awk '/^```(sh|bash)$/ { inside = 1; next } /^```/ { inside = 0 } inside && /^npm (install|i) / { print }' \
  "$repo"/README.md "$repo"/docs/*.md | sed 's/[[:space:]]*#.*$//' | grep -v ioredis | awk '!seen[$0]++')"
[[ -n "$commands" ]] || fail "found no install command in README.md and docs/"
while IFS= read -r command; do
  echo "\$ $command"
  # Only the package itself comes from the tarball; every other word is run as the docs write it.
  eval "${command//effect-renewable-bearer/$tarball}"
done <<<"$commands"
[[ ! -e node_modules/ioredis ]] || fail "ioredis got installed"
node -e 'const p = require("effect/package.json"); if (!p.version.startsWith("3.")) throw new Error(`effect ${p.version} is not the Effect 3 line`); console.log(`effect ${p.version}`)'

# The public modules: the root and every subpath the package exports (each dist/esm/*.js but the index).
modules="$(cd node_modules/effect-renewable-bearer/dist/esm && ls ./*.js | sed 's#^\./##; s#\.js$##' | grep -vx index)"
{
  echo 'import * as Root from "effect-renewable-bearer"'
  for m in $modules; do echo "import * as $m from \"effect-renewable-bearer/$m\""; done
  echo "export const modules = [Root, $(echo $modules | sed 's/ /, /g')]"
  echo '// A public type that points at a missing declaration turns into `any`; this one must stay a union.'
  echo '// @ts-expect-error not a client authentication method'
  echo 'export const misspelt: OAuth2TokenSource.ClientAuthMethod = "client_secret_post_typo"'
} >all.ts
sed 's/^import \* as \([A-Za-z]*\) from \(.*\)$/import \1 = require(\2)/; s/^export const/export const/' all.ts >all.cts

# TypeScript 6 and later default `types` to [] and `effect`'s declarations name web globals (URL, AbortSignal),
# so each configuration says where they come from: @types/node for Node, the DOM library for a bundler.
tsconfig() { # module moduleResolution lib types files...
  local module="$1" resolution="$2" lib="$3" types="$4"
  shift 4
  local files
  files="$(printf '"%s",' "$@")"
  cat <<EOF
{
  "compilerOptions": {
    "target": "ES2022",
    "lib": [$lib],
    "types": [$types],
    "module": "$module",
    "moduleResolution": "$resolution",
    "strict": true,
    "exactOptionalPropertyTypes": true,
    "skipLibCheck": false,
    "noEmit": true
  },
  "files": [${files%,}]
}
EOF
}

step "type-check every public module: strict, skipLibCheck false, nodenext (ESM and CommonJS)"
tsconfig nodenext nodenext '"ES2022"' '"node"' all.ts all.cts >tsconfig.nodenext.json
npx tsc -p tsconfig.nodenext.json

step "type-check every public module: strict, skipLibCheck false, bundler"
tsconfig esnext bundler '"ES2022", "DOM"' "" all.ts >tsconfig.bundler.json
npx tsc -p tsconfig.bundler.json

step "the README quick start, compiled with tsc, on plain node"
awk '/^## Quick start/ { section = 1 } section && /^```ts$/ { inside = 1; next } inside && /^```/ { exit } inside { print }' \
  "$repo/README.md" >quickstart.ts
[[ -s quickstart.ts ]] || fail "no ts block under the README's Quick start"
cat >tsconfig.quickstart.json <<'EOF'
{
  "compilerOptions": {
    "target": "ES2022",
    "lib": ["ES2022"],
    "types": ["node"],
    "module": "nodenext",
    "moduleResolution": "nodenext",
    "strict": true,
    "skipLibCheck": false,
    "outDir": "out"
  },
  "files": ["quickstart.ts"]
}
EOF
npx tsc -p tsconfig.quickstart.json
node out/quickstart.js | tee quickstart.log
grep -q "same token: true" quickstart.log || fail "the quick start did not print 'same token: true'"

step "bundle the root import with esbuild: node (no ioredis), neutral, browser"
cat >entry.ts <<'EOF'
import * as Lib from "effect-renewable-bearer"
console.log(`bundled: ${Object.keys(Lib).sort().join(", ")}`)
EOF
esbuild="$repo/node_modules/.bin/esbuild"
"$esbuild" entry.ts --bundle --platform=node --format=esm --outfile=bundle-node.mjs --log-level=warning
node bundle-node.mjs
"$esbuild" entry.ts --bundle --platform=neutral --format=esm --outfile=bundle-neutral.mjs --log-level=warning
"$esbuild" entry.ts --bundle --platform=browser --format=esm --outfile=bundle-browser.mjs --log-level=warning
node bundle-neutral.mjs
if grep -Eq 'from "node:|require\("node:|ioredis' bundle-neutral.mjs bundle-browser.mjs; then
  fail "a neutral or browser bundle refers to a Node built-in or ioredis"
fi

step "ES module app: one effect copy"
cat >esm-check.mjs <<'EOF'
import { Data } from "effect"
import { Errors } from "effect-renewable-bearer"
import * as FileTokenStore from "effect-renewable-bearer/FileTokenStore"
if (!(new Errors.StoppedError() instanceof Data.Error)) throw new Error("the package loaded its own effect copy")
if (typeof FileTokenStore.layer !== "function") throw new Error("FileTokenStore.layer is missing")
console.log("ESM: one effect copy")
EOF
node esm-check.mjs

step "CommonJS app: require() from a .cjs file, one effect copy"
cat >cjs-check.cjs <<'EOF'
const { Data, Effect, Layer } = require("effect")
const { Errors, RenewableBearer, Token, TokenSource } = require("effect-renewable-bearer")
const FileTokenStore = require("effect-renewable-bearer/FileTokenStore")
const RedisTokenStore = require("effect-renewable-bearer/RedisTokenStore")
if (typeof FileTokenStore.layer !== "function" || typeof RedisTokenStore.layer !== "function")
  throw new Error("a subpath export is missing")
if (!(new Errors.StoppedError() instanceof Data.Error)) throw new Error("the package loaded its own effect copy")
const loaded = Object.keys(require.cache)
const effectFiles = loaded.filter((file) => /[\\/]node_modules[\\/]effect[\\/]/.test(file))
const esm = loaded.filter((file) => /[\\/](effect|effect-renewable-bearer)[\\/]dist[\\/]esm[\\/]/.test(file))
if (effectFiles.length === 0 || esm.length > 0) throw new Error(`expected only CommonJS files, got ${esm}`)
const program = Effect.flatMap(RenewableBearer.RenewableBearer, (bearer) => bearer.fetch())
Effect.runPromise(
  Effect.provide(program, RenewableBearer.RenewableBearerLive.pipe(Layer.provide(TokenSource.layerToken(Token.make("t")))))
).then((token) => console.log(`CommonJS: one effect copy (${effectFiles.length} CommonJS files), fetched ${token}`))
EOF
node cjs-check.cjs

step "all checks passed"
