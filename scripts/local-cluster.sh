#!/usr/bin/env bash
# Start and stop a local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager
# and a simulated node, built from upstream Go modules by testenv/).
#
#   scripts/local-cluster.sh up DIR       build testenv if needed, start a cluster in DIR
#   scripts/local-cluster.sh down DIR     stop the cluster in DIR
#   scripts/local-cluster.sh status DIR   show which components run
#   scripts/local-cluster.sh build        only build (or rebuild when the sources changed)
#   scripts/local-cluster.sh path         print the path of the testenv binary
#
# Environment: TESTENV_OWNER_PID stops the cluster when that process ends; TESTENV_LB_POOL sets
# the LoadBalancer address pool (default 127.0.0.0/8); FERRY_TESTENV_BIN_DIR moves the cached
# binary (default target/testenv).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin_dir=${FERRY_TESTENV_BIN_DIR:-$repo/target/testenv}
bin=$bin_dir/testenv

usage() {
  sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

source_hash() {
  (cd "$repo/testenv" && cat go.mod go.sum ./*.go && go version) | sha256sum | cut -d' ' -f1
}

build() {
  command -v go >/dev/null || { echo "local-cluster: 'go' is not on PATH; install Go 1.26 or newer" >&2; exit 1; }
  local hash
  hash=$(source_hash)
  mkdir -p "$bin_dir"
  # Test processes may ask for a cluster at the same time: one builds, the others wait.
  exec 9>"$bin_dir/build.lock"
  flock 9
  if [[ -x $bin && -f $bin_dir/source.sha256 && $(cat "$bin_dir/source.sha256") == "$hash" ]]; then
    exec 9>&-
    return 0
  fi
  local version minor
  version=$(cd "$repo/testenv" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
  minor=$(echo "$version" | cut -d. -f2)
  echo "local-cluster: building testenv against k8s.io/kubernetes $version" \
    "(the first build downloads and compiles Kubernetes: several minutes)" >&2
  local start=$SECONDS
  (
    cd "$repo/testenv"
    go build -trimpath -ldflags "-s -w \
      -X k8s.io/component-base/version.gitVersion=$version \
      -X k8s.io/component-base/version.gitMajor=1 \
      -X k8s.io/component-base/version.gitMinor=$minor \
      -X k8s.io/component-base/version.gitTreeState=clean" \
      -o "$bin.tmp" .
  ) &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 5
    if kill -0 "$pid" 2>/dev/null && (( (SECONDS - start) % 30 < 5 )); then
      echo "local-cluster: still building testenv ($((SECONDS - start))s)" >&2
    fi
  done
  wait "$pid"
  mv "$bin.tmp" "$bin"
  echo "$hash" > "$bin_dir/source.sha256"
  echo "local-cluster: built $bin in $((SECONDS - start))s" >&2
  exec 9>&-
}

cmd=${1:-}
case $cmd in
  build)
    build
    ;;
  path)
    echo "$bin"
    ;;
  up)
    [[ $# -eq 2 ]] || usage
    build
    args=(up --dir "$2" --lb-pool "${TESTENV_LB_POOL:-127.0.0.0/8}")
    if [[ -n ${TESTENV_OWNER_PID:-} ]]; then args+=(--owner-pid "$TESTENV_OWNER_PID"); fi
    "$bin" "${args[@]}" >&2
    echo "export KUBECONFIG=$(cd "$2" && pwd)/kubeconfig"
    ;;
  down | status)
    [[ $# -eq 2 ]] || usage
    if [[ ! -x $bin ]]; then
      echo "local-cluster: no testenv binary at $bin, so nothing was started from here" >&2
      exit 0
    fi
    "$bin" "$cmd" --dir "$2"
    ;;
  *)
    usage
    ;;
esac
