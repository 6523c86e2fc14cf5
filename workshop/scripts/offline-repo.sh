#!/usr/bin/env bash
# Writes the part of the workshop that runs without internet into DEST, laid out as in the
# workshop repository, with every repoURL set to REPO_URL: the finished workshop (the starting
# tree plus every solution, in order, but the canary of exercise 09, whose analysis needs the
# workshop's Prometheus), keeping the AppProjects and the Applications labelled
# workshop.ferry.dev/offline: "true" with the folders they sync, the root app and the CRDs for
# ferry validate. Apps that need the internet (Helm charts from chart repositories, Tekton's
# release file), the CRDs those bring, or a node that runs containers (ferry's own
# Deployment) are left out and listed. `make demo` and CI use this.
#
#   workshop/scripts/offline-repo.sh DEST REPO_URL
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 DEST REPO_URL" >&2
  exit 2
fi
dest=$1 url=$2
workshop=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/workshop"
(cd "$workshop" && tar --exclude=./.vagrant --exclude=./.kube -cf - .) | tar -xf - -C "$tmp/workshop"
skipped=()
for solution in "$tmp"/workshop/solutions/[0-9][0-9]-*/; do
  case $(basename "$solution") in
    # The canary's analysis asks the workshop's Prometheus (exercise 06, a chart from the
    # internet): offline, every analysis would end in Error and abort the rollout.
    09-canary) skipped+=("$(basename "$solution")"); continue ;;
  esac
  cp -R "$solution." "$tmp/workshop/"
done
"$tmp/workshop/scripts/use-my-fork.sh" "$url" >/dev/null

mkdir -p "$dest/workshop/apps"
cp -R "$tmp/workshop/bootstrap" "$tmp/workshop/crds" "$dest/workshop/"
kept=() left=()
for app in "$tmp"/workshop/apps/*.yaml; do
  name=$(basename "$app" .yaml)
  if grep -q '^kind: AppProject' "$app" || grep -q 'workshop.ferry.dev/offline: "true"' "$app"; then
    cp "$app" "$dest/workshop/apps/"
    path=$(sed -n 's/^[[:space:]]*path:[[:space:]]*//p' "$app" | head -n1)
    if [[ -n $path ]]; then
      if [[ ! -d $tmp/$path ]]; then
        echo "offline-repo: $name syncs $path, which does not exist" >&2
        exit 1
      fi
      mkdir -p "$dest/$path"
      cp -R "$tmp/$path/." "$dest/$path/"
    fi
    kept+=("$name")
  else
    left+=("$name")
  fi
done
cat >"$dest/README.md" <<MD
# ferry demo repository

Made by \`workshop/scripts/offline-repo.sh\` from ferry's workshop: the apps that run without
internet (${kept[*]}), laid out as in the workshop. The root Application
(\`workshop/bootstrap/root-app.yaml\`) syncs \`workshop/apps/\`; each app there syncs its folder.
Left out: ${left[*]} (they need the internet, or, for ferry itself, a node that runs
containers: the demo runs ferry on your machine instead).
MD
echo "offline apps: ${kept[*]}"
echo "left out (need the internet or a node that runs containers): ${left[*]}"
echo "solutions left out (need the internet): ${skipped[*]}"
