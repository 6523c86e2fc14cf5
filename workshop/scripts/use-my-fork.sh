#!/usr/bin/env bash
# Points every Application, the AppProject and the pipeline at your fork: replaces the repository
# URL the workshop files carry now (the placeholder https://github.com/YOUR-GITHUB-USER/ferry.git
# at first) with URL, in workshop/ and its solutions. Run it once after forking, then commit and
# push (exercise 01). Running it again with another URL moves everything to that URL.
#
#   workshop/scripts/use-my-fork.sh https://github.com/<you>/ferry.git
set -euo pipefail

if [[ $# -ne 1 || -z $1 ]]; then
  echo "usage: $0 URL   (the https URL of your fork, e.g. https://github.com/<you>/ferry.git)" >&2
  exit 2
fi
new=$1
if [[ $new == *" "* || $new == *"|"* ]]; then
  echo "use-my-fork: '$new' is not a repository URL (no spaces or '|')" >&2
  exit 2
fi

workshop=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
root_app=$workshop/bootstrap/root-app.yaml
old=$(sed -n 's/^[[:space:]]*repoURL:[[:space:]]*//p' "$root_app" | head -n1)
if [[ -z $old ]]; then
  echo "use-my-fork: no repoURL in $root_app; is this the workshop tree?" >&2
  exit 1
fi
if [[ $old == "$new" ]]; then
  echo "already pointing at $new"
  exit 0
fi

changed=0
while IFS= read -r -d '' file; do
  if grep -qF "$old" "$file"; then
    # Literal replacement: escape what sed would read as pattern syntax.
    from=$(printf '%s' "$old" | sed 's/[][\.*^$/|]/\\&/g')
    sed -i "s|$from|$new|g" "$file"
    echo "  $(realpath --relative-to="$workshop/.." "$file")"
    changed=$((changed + 1))
  fi
done < <(find "$workshop" -type f \( -name '*.yaml' -o -name '*.yml' \) -not -path '*/.vagrant/*' -print0)
echo "replaced $old with $new in $changed file(s)"
