#!/usr/bin/env bash
# `make demo`: the GitOps loop on one machine, offline. Builds ferry and the local control plane,
# starts the control plane, creates a local Git repository from the workshop (the part that
# needs no internet: the AppProject, the root app and podinfo; see
# workshop/scripts/offline-repo.sh), installs ferry's CRDs, runs ferry with its UI, applies the
# workshop's root App-of-Apps Application, waits until everything is Synced and Healthy, and
# prints a short guided tour.
# `make demo-down` (scripts/demo.sh down) stops it all. Everything lives in .demo/ (or
# $FERRY_DEMO_DIR); ferry listens on $FERRY_DEMO_LISTEN (default 127.0.0.1:8080).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
demo=${FERRY_DEMO_DIR:-$repo/.demo}
listen=${FERRY_DEMO_LISTEN:-127.0.0.1:8080}
ferry=$repo/target/release/ferry

step() { printf '\n==> [demo %4ss] %s\n' "$SECONDS" "$*"; }

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

step "building ferry (cargo build --release; the first build takes several minutes, later ones seconds)"
cargo build --release --locked -p ferry

step "starting the local control plane in $demo/cluster (the first run also builds it: minutes)"
mkdir -p "$demo/cluster"
scripts/local-cluster.sh up "$demo/cluster" >/dev/null
export KUBECONFIG=$demo/cluster/kubeconfig

step "the demo Git repository ($demo/repo.git, working clone $demo/clone)"
git_() { git -c user.name="Demo User" -c user.email=demo@example.test -c init.defaultBranch=main "$@"; }
# A repository from before the workshop layout is made again.
if [[ -d $demo/repo.git ]] && ! git -C "$demo/repo.git" cat-file -e main:workshop/bootstrap/root-app.yaml 2>/dev/null; then
  echo "the existing demo repository predates the workshop layout; making it again"
  rm -rf "$demo/repo.git" "$demo/clone"
fi
if [[ ! -d $demo/repo.git ]]; then
  git_ init --quiet --bare "$demo/repo.git"
  rm -rf "$demo/clone"
  git_ clone --quiet "$demo/repo.git" "$demo/clone" 2>/dev/null
  workshop/scripts/offline-repo.sh "$demo/clone" "file://$demo/repo.git"
  git_ -C "$demo/clone" checkout --quiet -B main
  git_ -C "$demo/clone" add --all
  git_ -C "$demo/clone" commit --quiet -m "The workshop's offline apps: the project, the root app and podinfo"
  git_ -C "$demo/clone" push --quiet origin main
else
  echo "reusing the existing demo repository (make demo-down keeps it; rm -rf $demo to start over)"
fi

step "installing ferry's CRDs and the default AppProject"
"$ferry" install --namespace ferry

step "starting ferry (controller and UI on http://$listen; log: $demo/ferry.log)"
stop_ferry
# --insecure-no-auth: the demo's UI and API on 127.0.0.1 are open to this machine only.
# --allow-file-repos: the demo's repository is a local (file://) one.
nohup "$ferry" run --namespace ferry --poll-interval 5s --cache-dir "$demo/cache" \
  --listen "$listen" --insecure-no-auth --allow-file-repos >"$demo/ferry.log" 2>&1 &
echo $! >"$demo/ferry.pid"

step "applying the root Application (workshop/bootstrap/root-app.yaml: App-of-Apps over workshop/apps)"
# (kubectl warns about Argo CD's finalizer name, which Argo CD and ferry use as it is.)
kubectl apply -f "$demo/clone/workshop/bootstrap/root-app.yaml" 2>&1 | grep -v 'domain-qualified finalizer'

step "waiting until every app is Synced and Healthy"
last='' shown=0
for _ in $(seq 1 180); do
  if ! kill -0 "$(cat "$demo/ferry.pid")" 2>/dev/null; then
    echo "ferry stopped; the end of its log:" >&2
    tail -n 20 "$demo/ferry.log" >&2
    exit 1
  fi
  now=$(kubectl get applications -n ferry --no-headers 2>/dev/null |
    awk '{printf "%s %s/%s  ", $1, ($2 == "" ? "-" : $2), ($3 == "" ? "-" : $3)}')
  # Each change at once, and a line every 15 s while nothing changes.
  if [[ $now != "$last" ]] || ((SECONDS - shown >= 15)); then
    printf '  [%4ss] %s\n' "$SECONDS" "${now:-no applications yet}"
    last=$now shown=$SECONDS
  fi
  if "$ferry" app wait root --namespace ferry --timeout 1s >/dev/null 2>&1; then
    break
  fi
  sleep 1
done
"$ferry" app wait root --namespace ferry --timeout 5s
"$ferry" app list --namespace ferry

cat <<MSG

Everything is Synced and Healthy. ferry's UI: http://$listen

A short tour (in another shell):

  export KUBECONFIG=$KUBECONFIG
  alias ferry=$ferry
  cd $demo/clone

  # 1. GitOps: change podinfo's UI colour in Git, commit, push; ferry syncs it within seconds.
  sed -i 's/#34577c/#c0392b/' workshop/workloads/podinfo/deployment.yaml
  git commit -am "podinfo: red" && git push
  ferry app get podinfo -n ferry          # the revision moves to your commit
  ferry app history podinfo -n ferry      # who changed what, when

  # 2. Drift: change the cluster behind Git's back; self-heal puts it back.
  kubectl scale deployment/podinfo -n podinfo --replicas=5
  kubectl get deployment/podinfo -n podinfo -w     # back to 2 within seconds

  # 3. Rollback, the GitOps way: revert the commit and push.
  git revert --no-edit HEAD && git push
  ferry app history podinfo -n ferry      # the revert is the newest entry

  # 4. Watch all of it in the UI at http://$listen, or through the API and metrics:
  curl -s http://$listen/api/v1/applications
  curl -s http://$listen/metrics | grep ferry_app_info

The repository is the offline part of the workshop (workshop/README.md); the local control plane
runs no containers, so podinfo's pods are Ready without serving traffic. ferry's log:
$demo/ferry.log. Stop everything with: make demo-down
MSG
