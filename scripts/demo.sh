#!/usr/bin/env bash
# `make demo`: builds ferry and the local control plane, starts the control plane in .demo/ and
# says how to use it. `make demo-down` (scripts/demo.sh down) stops it.
#
# At this stage of the project the demo is the platform ferry runs on; later steps add ferry's
# controller, its UI and the workshop's App-of-Apps repository.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
demo_dir=${FERRY_DEMO_DIR:-$repo/.demo}

if [[ ${1:-up} == down ]]; then
  scripts/local-cluster.sh down "$demo_dir/cluster"
  exit 0
fi

echo "==> building ferry (cargo build --release; the first build takes a few minutes)"
cargo build --release --locked -p ferry
echo "==> starting the local control plane in $demo_dir/cluster"
mkdir -p "$demo_dir/cluster"
scripts/local-cluster.sh up "$demo_dir/cluster" >/dev/null
kubeconfig=$demo_dir/cluster/kubeconfig
KUBECONFIG=$kubeconfig kubectl get nodes

cat <<MSG

The local control plane is running (real etcd, kube-apiserver and kube-controller-manager, plus a
simulated node that runs pods, finishes Jobs and gives LoadBalancer Services an address).

  export KUBECONFIG=$kubeconfig
  kubectl create deployment web --image=ghcr.io/stefanprodan/podinfo:6.7.1 --replicas=2
  kubectl rollout status deployment/web
  kubectl expose deployment web --type=LoadBalancer --port=80 --target-port=9898
  kubectl get service web        # EXTERNAL-IP comes from 127.0.0.0/8
  $repo/target/release/ferry --help

Logs are in $demo_dir/cluster/logs. Stop everything with: make demo-down
MSG
