#!/usr/bin/env bash
# The test suite, as `make test` and CI run it: formatting, lints, the Go and Rust tests, with
# one local control plane shared by the whole run (and stopped when this script ends).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

step() { printf '\n==> %s\n' "$*"; }

step "helm, kustomize and sops (pinned; target/tools/bin)"
scripts/install-tools.sh
export PATH="$repo/target/tools/bin:$PATH"

step "browser test prerequisites: Debian's chromium, playwright-core (tests/e2e, pinned)"
# The UI's browser test fails when these are missing (it never passes by skipping), so the test
# command installs them: chromium from Debian's packages (as root), playwright-core from npm.
if ! command -v chromium >/dev/null; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium
  else
    echo "chromium is missing: apt-get install chromium (as root), then run make test again" >&2
    exit 1
  fi
fi
if [[ ! -f tests/e2e/node_modules/playwright-core/package.json ]]; then
  (cd tests/e2e && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi

step "analysis test prerequisite: Debian's prometheus"
# The rollout analysis tests start the real Prometheus and fail without it (never skip).
if ! command -v prometheus >/dev/null; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus
  else
    echo "prometheus is missing: apt-get install prometheus (as root), then run make test again" >&2
    exit 1
  fi
fi

step "testenv: build, vet, unit tests"
scripts/local-cluster.sh build
unformatted=$(cd testenv && gofmt -l .)
if [[ -n $unformatted ]]; then
  echo "gofmt: these files need formatting (make fmt): $unformatted" >&2
  exit 1
fi
(cd testenv && go vet ./... && go test ./...)

step "shell scripts: shellcheck"
if command -v shellcheck >/dev/null; then
  shellcheck .ci/run scripts/*.sh bench/*/*.sh workshop/scripts/*.sh workshop/vm/*.sh
elif [[ ${CI:-} == true ]]; then
  echo "shellcheck is missing (.ci/run installs it)" >&2
  exit 1
else
  echo "shellcheck not installed; skipped (apt-get install shellcheck)"
fi

step "workshop: the Vagrantfile parses (ruby -c; vagrant validate where Vagrant is installed)"
if command -v ruby >/dev/null; then
  ruby -c workshop/Vagrantfile
elif [[ ${CI:-} == true ]]; then
  echo "ruby is missing (.ci/run installs it)" >&2
  exit 1
else
  echo "ruby not installed; skipped (apt-get install ruby)"
fi
if command -v vagrant >/dev/null; then
  (cd workshop && VAGRANT_DOTFILE_PATH="$repo/target/vagrant" vagrant validate --ignore-provider)
else
  echo "vagrant not installed; vagrant validate skipped"
fi

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo build (tests)"
cargo test --workspace --locked --no-run

step "local control plane for the test run"
cluster_dir="$repo/target/testenv/runs/$$-make-test"
rm -rf "$cluster_dir"
mkdir -p "$cluster_dir"
cleanup() { scripts/local-cluster.sh down "$cluster_dir" >/dev/null 2>&1 || true; }
trap cleanup EXIT
start=$(date +%s%N)
TESTENV_OWNER_PID=$$ scripts/local-cluster.sh up "$cluster_dir" >/dev/null
echo "control plane up in $(( ($(date +%s%N) - start) / 1000000 )) ms"
export FERRY_TEST_KUBECONFIG="$cluster_dir/kubeconfig"

step "cargo test"
cargo test --workspace --locked --no-fail-fast

step "benchmark: make bench N=10, quick (checks that it runs; asserts no timings)"
python3 -m unittest discover -s bench/engine
cargo build --locked -p ferry
BENCH_FERRY="$repo/target/debug/ferry" make bench N=10 BENCH_ARGS="--quick --out-dir $repo/target/bench/results"

step "benchmark: ferry preview of 10 apps, quick (checks that it runs and renders no unchanged app twice; asserts no timings)"
python3 bench/preview/run.py --ferry "$repo/target/debug/ferry" --n 10 --changed 3 --quick --out-dir "$repo/target/bench/results"
