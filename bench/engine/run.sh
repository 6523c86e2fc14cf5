#!/usr/bin/env bash
# The engine benchmark (what `make bench` runs): builds ferry in release mode (or uses
# BENCH_FERRY), then runs bench/engine/run.py with the arguments given. See bench/README.md.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
for tool in python3 kubectl git cargo; do
  command -v "$tool" >/dev/null || { echo "bench: '$tool' is not on PATH" >&2; exit 2; }
done
"$repo/scripts/local-cluster.sh" build
if [[ -z ${BENCH_FERRY:-} ]]; then
  echo "==> [bench] building ferry (release)" >&2
  (cd "$repo" && cargo build --release --locked -p ferry --quiet)
  BENCH_FERRY=$repo/target/release/ferry
fi
exec python3 "$repo/bench/engine/run.py" --ferry "$BENCH_FERRY" "$@"
