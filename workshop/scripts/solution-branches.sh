#!/usr/bin/env bash
# Turns workshop/solutions/NN-name/ into branches solution/NN-name of the clone you run it in:
# each branch starts from the previous one (the first from the current branch) and adds exactly
# the files of that solution, in one commit. With --push REMOTE it pushes the branches too
# (replacing older solution branches there with --force-with-lease).
#
#   workshop/scripts/solution-branches.sh                 # local branches only
#   workshop/scripts/solution-branches.sh --push origin   # and push them to your fork
set -euo pipefail

remote=
case ${1:-} in
  "") ;;
  --push)
    remote=${2:?"--push needs a remote name, e.g. --push origin"}
    ;;
  *)
    echo "usage: $0 [--push REMOTE]" >&2
    exit 2
    ;;
esac

top=$(git rev-parse --show-toplevel 2>/dev/null) || {
  echo "solution-branches: run this inside your clone of the repository" >&2
  exit 1
}
cd "$top"
if [[ ! -d workshop/solutions ]]; then
  echo "solution-branches: $top has no workshop/solutions" >&2
  exit 1
fi
if [[ -n $(git status --porcelain) ]]; then
  echo "solution-branches: the working tree has changes; commit or stash them first" >&2
  exit 1
fi

start=$(git rev-parse --abbrev-ref HEAD)
base=$(git rev-parse HEAD)
branches=()
for dir in workshop/solutions/[0-9][0-9]-*/; do
  name=$(basename "$dir")
  branch=solution/$name
  git checkout --quiet -B "$branch" "$base"
  # The solution's files, taken from the starting commit so that later solutions cannot leak in.
  tmp=$(mktemp -d)
  git archive "$base" "workshop/solutions/$name" | tar -x -C "$tmp"
  cp -R "$tmp/workshop/solutions/$name/." workshop/
  rm -rf "$tmp"
  git add workshop
  if git diff --cached --quiet; then
    echo "solution-branches: $name changes nothing on top of the solutions before it" >&2
    git checkout --quiet "$start"
    exit 1
  fi
  git commit --quiet -m "workshop: solution $name"
  echo "$branch: $(git diff --name-only HEAD~1 HEAD | tr '\n' ' ')"
  base=$(git rev-parse HEAD)
  branches+=("$branch")
done
git checkout --quiet "$start"

if [[ -n $remote ]]; then
  for branch in "${branches[@]}"; do
    git push --quiet --force-with-lease "$remote" "$branch"
    echo "pushed $branch to $remote"
  done
fi
