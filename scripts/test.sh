#!/usr/bin/env bash
# `npm test`: every check the project has, in order, stopping at the first failure.
#   lint+format (biome) and dependency rules (dependency-cruiser, .dependency-cruiser.cjs) -> types (tsc) ->
#   unit tests -> GPU tests on SwiftShader -> GPU tests on lavapipe -> extension builds (chrome, firefox) ->
#   end-to-end tests in Chromium.
# GPU tests never skip: no adapter, the wrong driver, or a skipped test fails the run.
# Ends with "N passed, N failed" summed over every vitest run.
# For local use only: `bash scripts/test.sh --from STEP` starts at STEP (lint, typecheck, unit, gpu-swiftshader,
# gpu-lavapipe, build, e2e) and says loudly that the earlier steps did not run. `npm test` always runs them all.
set -uo pipefail

from=''
if [[ ${1:-} == --from ]]; then
  from=${2:?"--from needs a step: lint typecheck unit gpu-swiftshader gpu-lavapipe build e2e"}
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export FORCE_COLOR=${FORCE_COLOR:-1}
REPORTS="$(mktemp -d "${TMPDIR:-/tmp}/rr-test.XXXXXX")"
trap 'rm -rf "$REPORTS"' EXIT

steps_done=()
steps_not_run=()
current=''

summary() {
  local status=$1
  echo
  echo "================================ summary ================================"
  for s in "${steps_not_run[@]}"; do echo "  --    $s (NOT RUN: --from)"; done
  for s in "${steps_done[@]}"; do echo "  ok    $s"; done
  [[ $status -ne 0 && -n $current ]] && echo "  FAIL  $current"
  node -e '
    const fs = require("fs");
    let passed = 0, failed = 0, skipped = 0;
    for (const f of fs.readdirSync(process.argv[1]).filter((f) => f.endsWith(".json"))) {
      const r = JSON.parse(fs.readFileSync(process.argv[1] + "/" + f, "utf8"));
      passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests + r.numTodoTests;
      console.log(`  ${f.replace(".json", "").padEnd(18)} ${r.numPassedTests} passed, ${r.numFailedTests} failed` +
        (r.numPendingTests + r.numTodoTests ? `, ${r.numPendingTests + r.numTodoTests} skipped` : ""));
    }
    console.log(`${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ""));
  ' "$REPORTS"
  exit "$status"
}

step() {
  local id=$1
  shift
  current=$1
  shift
  if [[ -n $from ]]; then
    if [[ $id != "$from" ]]; then
      echo "=== $current: NOT RUN (--from $from)"
      steps_not_run+=("$current")
      return
    fi
    from=''
  fi
  echo
  echo "=== $current: $*"
  if ! "$@"; then
    summary 1
  fi
  steps_done+=("$current")
}

# vitest with the default reporter on screen and a JSON report for the summary. $1 = report name.
vitest_run() {
  local name=$1
  shift
  npx vitest run "$@" --reporter=default --reporter=json --outputFile.json="$REPORTS/$name.json"
}

# GPU tests under one driver; checks the adapter line names that driver and that nothing was skipped.
gpu_tests() {
  local driver=$1 expect=$2 log="$REPORTS/gpu-$1.log"
  bash scripts/with-gpu.sh "$driver" npx vitest run --project gpu --reporter=default --reporter=json \
    --outputFile.json="$REPORTS/gpu-$driver.json" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  [[ $rc -eq 0 ]] || return "$rc"
  local adapter
  adapter=$(grep -m1 -a '\[gpu\] adapter:' "$log" | sed 's/\x1b\[[0-9;]*m//g')
  if [[ -z $adapter ]]; then
    echo "[test] no '[gpu] adapter:' line in the $driver run: did tests/gpu/setup.ts run?"
    return 1
  fi
  if ! grep -qi "$expect" <<<"$adapter"; then
    echo "[test] expected the $driver adapter ($expect), got: $adapter"
    return 1
  fi
  echo "[test] $driver: ${adapter#*adapter: }"
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const skipped = r.numPendingTests + r.numTodoTests;
    if (skipped) { console.error(`[test] ${skipped} GPU test(s) skipped under ${process.argv[2]}: GPU tests must run`); process.exit(1); }
  ' "$REPORTS/gpu-$driver.json" "$driver"
}

e2e_tests() {
  if ! compgen -G 'tests/e2e/**/*.test.ts' >/dev/null && ! compgen -G 'tests/e2e/*.test.ts' >/dev/null; then
    # Only while the folder has no tests yet; once one exists vitest runs (and fails loudly on its own).
    echo "[test] tests/e2e has no test files yet: nothing to run"
    return 0
  fi
  vitest_run e2e --project e2e
}

if [[ ! -f /usr/lib/chromium/vk_swiftshader_icd.json || ! -f .cache/mesa/lvp_icd.json ]]; then
  echo "[test] the Vulkan drivers are not set up: run  npm run gpu-env  (as root) first"
  current='gpu-env'
  summary 1
fi

# --vcs-*: check what git sees (tracked and not ignored), not scratch folders like .dev/
# Then the layering rules (entrypoints -> core -> kernels, UI through messages, no core/ folder cycles).
lint_all() {
  npx biome check --vcs-enabled=true --vcs-client-kind=git --vcs-use-ignore-file=true . && npm run -s lint:deps
}
step lint 'lint+format+dependency rules' lint_all
step typecheck 'typecheck' npx tsc --noEmit -p .
step unit 'unit tests' vitest_run unit --project unit
step gpu-swiftshader 'gpu tests (swiftshader)' gpu_tests swiftshader swiftshader
step gpu-lavapipe 'gpu tests (lavapipe)' gpu_tests lavapipe llvmpipe
step build 'build chrome' npx wxt build
step build-firefox 'build firefox' npx wxt build -b firefox
step e2e 'e2e tests' e2e_tests
current=''
summary 0
