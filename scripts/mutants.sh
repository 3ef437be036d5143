#!/usr/bin/env bash
# Proves that the model check and the fault matrix can fail: each deliberate bug below is put into a scratch
# copy of the core (never into the working tree), then test/model.test.ts and test/faults.test.ts run against
# it. Every mutant must make at least one of them fail. Usage: scripts/mutants.sh [mutant ...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
core=src/internal/bearerMachine.ts
fetchPath=src/internal/renewableBearer.ts
schedule=src/internal/schedule.ts

# name|file|python expression applied to the file's text (s)
mutants=(
  "hit-requests-renewal|$fetchPath|s.replace('if (now < state.refreshAt) this.#machine.report.hit()', 'if (now < state.refreshAt) { this.#machine.report.hit(); this.#machine.ask() }')"
  "served-inside-margin|$fetchPath|s.replace('!(now < state.usableUntil)) return undefined', '!(now < expiresAtMillis(state.token))) return undefined').replace('import * as Waiters from \"./waiters.js\"', 'import * as Waiters from \"./waiters.js\"\\nimport { expiresAtMillis } from \"./token.js\"')"
  "no-guard-for-scheduled|$schedule|s.replace('if (unchanged > 0) delay = Math.max(delay, backoffMillis(options, unchanged, false))', '').replace('Math.max(delay, options.initialRetryMillis * MIN_REFRESH_FRACTION)', 'delay')"
  "no-guard-for-invalidations|$core|s.replace('this.guard.rejected(state.receivedAt, this.now())', 'this.bypassGuard = true').replace('  asked = false', '  asked = false\\n  bypassGuard = false').replace('const wait = this.guard.waitMillis(now)', 'const wait = this.bypassGuard ? 0 : this.guard.waitMillis(now)\\n    this.bypassGuard = false')"
  "close-leaves-reportError-waiting|$core|s.replace('      this.attemptWaiters?.done(done)\\n', '')"
)

selected=("$@")
status=0
for entry in "${mutants[@]}"; do
  IFS='|' read -r name file expr <<<"$entry"
  if [ ${#selected[@]} -gt 0 ] && [[ ! " ${selected[*]} " =~ " $name " ]]; then continue; fi
  work="$(mktemp -d)"
  rsync -a --exclude node_modules --exclude .git "$root/" "$work/"
  ln -s "$root/node_modules" "$work/node_modules"
  python3 - "$work/$file" "$expr" <<'PY'
import sys
path, expr = sys.argv[1], sys.argv[2]
s = open(path).read()
t = eval(expr)
if t == s:
    sys.exit(f"the mutant does not apply to {path}")
open(path, "w").write(t)
PY
  failed="$(cd "$work" && timeout 600 npx vitest run test/model.test.ts test/faults.test.ts 2>&1 | tee "${TMPDIR:-/tmp}/mutant-$name.log" | grep -E '^ +(×|FAIL) ' | sed -E 's/ [0-9]+ms$//' | sort -u || true)"
  if [ -z "$failed" ]; then
    echo "SURVIVED $name"
    status=1
  else
    echo "KILLED   $name by:"
    echo "$failed" | sed 's/^/           /'
  fi
  rm -rf "$work"
done
exit $status
