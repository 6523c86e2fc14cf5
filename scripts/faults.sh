#!/usr/bin/env bash
# The fault harness (crates/ferry/tests/faults.rs) at full size, on a control plane of its own:
# `make faults [ROUNDS=50]`. `make test` runs it with 3 rounds. Prints the figures at the end.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
rounds=${1:-50}
scripts/install-tools.sh
export PATH="$repo/target/tools/bin:$PATH"
scripts/local-cluster.sh build
cluster_dir="$repo/target/testenv/runs/$$-faults"
rm -rf "$cluster_dir"
mkdir -p "$cluster_dir"
trap 'scripts/local-cluster.sh down "$cluster_dir" >/dev/null 2>&1 || true' EXIT
TESTENV_OWNER_PID=$$ scripts/local-cluster.sh up "$cluster_dir" >/dev/null
FERRY_TEST_KUBECONFIG="$cluster_dir/kubeconfig" FERRY_FAULT_ROUNDS=$rounds \
  cargo test --locked -p ferry --test faults -- --nocapture
