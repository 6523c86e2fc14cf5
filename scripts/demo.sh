#!/usr/bin/env bash
# `make demo`: the GitOps loop on one machine, offline. Builds ferry and the local control plane,
# starts the control plane, creates a local Git repository from examples/demo, installs ferry's
# CRDs, runs the ferry controller, applies the root App-of-Apps Application, waits until
# everything is Synced and Healthy, and prints a short guided tour.
# `make demo-down` (scripts/demo.sh down) stops it all. Everything lives in .demo/.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
demo=${FERRY_DEMO_DIR:-$repo/.demo}
ferry=$repo/target/release/ferry

step() { printf '\n==> %s\n' "$*"; }

stop_ferry() {
  if [[ -f $demo/ferry.pid ]]; then
    pid=$(cat "$demo/ferry.pid")
    if kill -0 "$pid" 2>/dev/null && grep -q ferry "/proc/$pid/cmdline" 2>/dev/null; then
      kill "$pid"
    fi
    rm -f "$demo/ferry.pid"
  fi
}

if [[ ${1:-up} == down ]]; then
  stop_ferry
  scripts/local-cluster.sh down "$demo/cluster"
  exit 0
fi

step "building ferry (cargo build --release; the first build takes a few minutes)"
cargo build --release --locked -p ferry

step "starting the local control plane in $demo/cluster"
mkdir -p "$demo/cluster"
scripts/local-cluster.sh up "$demo/cluster" >/dev/null
export KUBECONFIG=$demo/cluster/kubeconfig

step "creating the demo Git repository ($demo/repo.git, working clone $demo/clone)"
git_() { git -c user.name="Demo User" -c user.email=demo@example.test -c init.defaultBranch=main "$@"; }
if [[ ! -d $demo/repo.git ]]; then
  git_ init --quiet --bare "$demo/repo.git"
  rm -rf "$demo/clone"
  git_ clone --quiet "$demo/repo.git" "$demo/clone"
  cp -R examples/demo/. "$demo/clone/"
  grep -rl REPO_URL "$demo/clone" | xargs sed -i "s|REPO_URL|file://$demo/repo.git|g"
  git_ -C "$demo/clone" checkout --quiet -B main
  git_ -C "$demo/clone" add --all
  git_ -C "$demo/clone" commit --quiet -m "podinfo, deployed by ferry"
  git_ -C "$demo/clone" push --quiet origin main
else
  echo "reusing the existing demo repository"
fi

step "installing ferry's CRDs and the default AppProject"
"$ferry" install --namespace ferry

step "starting the ferry controller (log: $demo/ferry.log)"
stop_ferry
# --insecure-no-auth: the demo's API on 127.0.0.1 is open to this machine only.
nohup "$ferry" run --namespace ferry --poll-interval 5s --cache-dir "$demo/cache" \
  --listen 127.0.0.1:8080 --insecure-no-auth >"$demo/ferry.log" 2>&1 &
echo $! >"$demo/ferry.pid"

step "applying the root Application (App-of-Apps over apps/)"
kubectl apply -f - <<YAML
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: root
  namespace: ferry
spec:
  project: default
  source:
    repoURL: file://$demo/repo.git
    path: apps
    targetRevision: main
  destination:
    server: https://kubernetes.default.svc
    namespace: ferry
  syncPolicy:
    automated:
      prune: true
      selfHeal: true
YAML

step "waiting until every app is Synced and Healthy"
"$ferry" app wait root --namespace ferry --timeout 3m
for _ in $(seq 1 60); do
  kubectl get application podinfo -n ferry >/dev/null 2>&1 && break
  sleep 1
done
"$ferry" app wait podinfo --namespace ferry --timeout 3m
"$ferry" app list --namespace ferry
lb=$(kubectl get service podinfo -n podinfo -o jsonpath='{.status.loadBalancer.ingress[0].ip}')

cat <<MSG

Everything is Synced and Healthy. A short tour (in another shell):

  export KUBECONFIG=$KUBECONFIG
  alias ferry=$ferry

  # 1. GitOps: change podinfo's colour in Git, commit, push; ferry syncs it within seconds.
  cd $demo/clone
  sed -i 's/#34577c/#c0392b/' workloads/podinfo/deployment.yaml
  git commit -am "podinfo: red" && git push
  ferry app get podinfo -n ferry          # revision moves to your commit
  ferry app history podinfo -n ferry      # who changed what, when

  # 2. Drift: change the cluster behind Git's back; self-heal puts it back.
  kubectl scale deployment/podinfo -n podinfo --replicas=5
  kubectl get deployment/podinfo -n podinfo -w     # back to 2

  # 3. Rollback, the GitOps way: revert the commit and push.
  git revert --no-edit HEAD && git push

  # 4. The same through ferry's JSON API and metrics (http://127.0.0.1:8080).
  curl -s http://127.0.0.1:8080/api/v1/applications
  curl -s http://127.0.0.1:8080/metrics | grep ferry_app_info

podinfo's Service got the load-balancer address $lb (simulated: no traffic is served, the
local control plane runs no containers). ferry's log: $demo/ferry.log.
Stop everything with: make demo-down
MSG
