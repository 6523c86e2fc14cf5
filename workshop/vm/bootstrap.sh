#!/usr/bin/env bash
# Runs inside the VM as root (workshop/scripts/bootstrap.sh starts it from your machine):
# gets ferry's image and binary, installs ferry (CRDs, the default AppProject and the in-cluster
# controller), applies the root Application and waits until every app is Synced and Healthy.
#
# Where ferry comes from:
#   default                     build the image from /vagrant (the Dockerfile at the repo root)
#                               with the VM's Docker and import it into k3s's containerd
#   FERRY_RELEASE=v0.1.0        use a published release instead (no build): the image from
#   FERRY_RELEASE_REPO=you/ferry  ghcr.io/<repo> and the binary from the GitHub release
set -euo pipefail

image=ferry:0.1.0
repo_dir=/vagrant
say() { printf '==> [bootstrap %4ss] %s\n' "$SECONDS" "$*"; }
export KUBECONFIG=/etc/rancher/k3s/k3s.yaml

root_app=$repo_dir/workshop/bootstrap/root-app.yaml
if [[ ! -f $root_app ]]; then
  echo "bootstrap: $root_app is missing: /vagrant is empty or not the repository (docs/vm-setup.md)" >&2
  exit 1
fi
if grep -q YOUR-GITHUB-USER "$root_app"; then
  echo "bootstrap: the workshop still points at the placeholder repository." >&2
  echo "  Run workshop/scripts/use-my-fork.sh https://github.com/<you>/ferry.git, commit and push (exercise 01)." >&2
  exit 1
fi

if [[ -n ${FERRY_RELEASE:-} ]]; then
  : "${FERRY_RELEASE_REPO:?FERRY_RELEASE_REPO=<owner>/<repo> names where the release is published}"
  arch=$(uname -m)
  say "ferry $FERRY_RELEASE from github.com/$FERRY_RELEASE_REPO (binary) and ghcr.io/$FERRY_RELEASE_REPO (image)"
  tmp=$(mktemp -d)
  curl -sfL -o "$tmp/ferry.tgz" \
    "https://github.com/$FERRY_RELEASE_REPO/releases/download/$FERRY_RELEASE/ferry-$FERRY_RELEASE-$arch-unknown-linux-gnu.tar.gz"
  tar -xzf "$tmp/ferry.tgz" -C "$tmp"
  install -m 0755 "$tmp/ferry" /usr/local/bin/ferry
  rm -rf "$tmp"
  k3s ctr --namespace k8s.io images pull "ghcr.io/$FERRY_RELEASE_REPO:$FERRY_RELEASE"
  k3s ctr --namespace k8s.io images tag --force "ghcr.io/$FERRY_RELEASE_REPO:$FERRY_RELEASE" "docker.io/library/$image"
else
  say "building $image from $repo_dir with Docker (the first build takes 10-20 minutes; later ones reuse the cache)"
  log=/var/log/ferry-image-build.log
  # The build's steps as they start and finish (the full log goes to $log).
  set +e
  DOCKER_BUILDKIT=1 docker build --progress=plain -t "$image" "$repo_dir" 2>&1 | tee "$log" |
    grep --line-buffered -E '^#[0-9]+ (\[|DONE|CACHED)|ERROR'
  build_status=${PIPESTATUS[0]}
  set -e
  if ((build_status != 0)); then
    echo "bootstrap: building $image failed; the end of $log:" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
  say "importing $image into k3s's containerd (no registry needed)"
  docker save "$image" | k3s ctr --namespace k8s.io images import - >/dev/null
  say "installing the ferry CLI from the image into /usr/local/bin"
  cid=$(docker create "$image")
  docker cp "$cid:/usr/local/bin/ferry" /usr/local/bin/ferry
  docker rm "$cid" >/dev/null
fi
ferry version

say "ferry install --with-controller (CRDs, the default AppProject, ferry's Deployment)"
ferry install --namespace ferry --with-controller --image "$image"
kubectl rollout status deployment/ferry -n ferry --timeout=5m

say "applying the root Application"
kubectl apply -f "$root_app"

say "waiting until every app is Synced and Healthy (first sync pulls charts and images: minutes)"
for _ in $(seq 1 120); do
  kubectl get applications -n ferry --no-headers 2>/dev/null |
    awk '{printf "    %-20s %-10s %s\n", $1, $2, $3}'
  if ferry app wait root --namespace ferry --sync --health --timeout 10s >/dev/null 2>&1; then
    ferry app list --namespace ferry
    say "done. UI: http://ferry.192.168.56.200.nip.io (once exercise 03 is in; before: workshop/scripts/ui.sh)"
    exit 0
  fi
  echo "  ... ($SECONDS s)"
done
echo "bootstrap: not everything is Synced and Healthy after 20 minutes; see 'ferry app list -n ferry' and docs/vm-setup.md" >&2
exit 1
