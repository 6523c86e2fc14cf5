#!/usr/bin/env bash
# Long runs of the property tests (crates/*/tests/properties.rs, webhook payloads, rollout analysis conditions): `make fuzz`.
# Runs them again and again, each round with fresh random seeds and CASES cases per property,
# until SECONDS_TOTAL have passed; stops at the first failure (proptest prints the minimal
# failing input and saves its seed under proptest-regressions/, which is committed with the fix).
#   make fuzz [FUZZ_SECONDS=3600] [FUZZ_CASES=20000]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

total=${FUZZ_SECONDS:-3600}
cases=${FUZZ_CASES:-20000}
cargo test --locked -p ferry-core -p ferry-pipeline -p ferry-server -p ferry-rollouts --no-run >/dev/null 2>&1 ||
  cargo test --locked -p ferry-core -p ferry-pipeline -p ferry-server -p ferry-rollouts --no-run

run_round() {
  PROPTEST_CASES=$cases cargo test --locked -q -p ferry-core --test properties || return 1
  PROPTEST_CASES=$cases cargo test --locked -q -p ferry-pipeline --test properties || return 1
  PROPTEST_CASES=$cases cargo test --locked -q -p ferry-server --lib webhook::properties || return 1
  PROPTEST_CASES=$cases cargo test --locked -q -p ferry-rollouts --lib analysis::expr::tests::properties || return 1
}

start=$SECONDS
rounds=0
properties=$(grep -c '^    fn ' crates/core/tests/properties.rs crates/pipeline/tests/properties.rs crates/server/src/webhook_properties.rs | awk -F: '{s += $2} END {print s}')
# The condition language's properties sit in a nested test module (crates/rollouts).
properties=$((properties + $(grep -c '^            fn ' crates/rollouts/src/analysis/expr/mod.rs)))
while (( SECONDS - start < total )); do
  run_round >"target/fuzz-round.log" 2>&1 || {
    cat target/fuzz-round.log >&2
    echo "fuzz: a property failed in round $((rounds + 1)); the output above names it and its minimal input" >&2
    exit 1
  }
  rounds=$((rounds + 1))
  echo "fuzz: round $rounds done ($((SECONDS - start)) s): $((rounds * cases)) cases for each of $properties properties"
done
echo "fuzz: $rounds rounds, $((rounds * cases * properties)) cases in all, in $((SECONDS - start)) s; no failure"
