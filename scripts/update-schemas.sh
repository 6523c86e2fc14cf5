#!/usr/bin/env bash
# Regenerate the Kubernetes schemas `ferry validate` bundles, from a real kube-apiserver.
#
#   scripts/update-schemas.sh
#
# Starts a local control plane (scripts/local-cluster.sh, the Kubernetes version pinned in
# testenv/go.mod), downloads its OpenAPI v3 documents (`/openapi/v3` lists them; every
# `apis/<group>/<version>` and `api/v1` is fetched), and writes one combined, minimized file:
#
#   crates/pipeline/schemas/kubernetes-v<major>.<minor>/schemas.json
#     {"kubernetesVersion": "v1.36.3", "groupVersions": [...], "schemas": {NAME: SCHEMA, ...}}
#
# Minimized means: only `components.schemas` is kept, merged across group-versions (every
# document repeats ObjectMeta & co.; the names are global, so one copy each), and the
# documentation strings (`description`) and merge hints (`x-kubernetes-patch-*`) are dropped.
# A field *named* `description` (PriorityClass.description) stays: only string values go.
# Needs jq, kubectl and what scripts/local-cluster.sh needs (Go, to build testenv once).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
for tool in jq kubectl; do
  command -v "$tool" >/dev/null || { echo "update-schemas: '$tool' is not on PATH" >&2; exit 2; }
done

work=$(mktemp -d)
cluster=$work/cluster
cleanup() {
  "$repo/scripts/local-cluster.sh" down "$cluster" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

"$repo/scripts/local-cluster.sh" up "$cluster" >&2
export KUBECONFIG=$cluster/kubeconfig

version=$(kubectl version -o json | jq -r '.serverVersion.gitVersion')
minor=$(kubectl version -o json | jq -r '.serverVersion.major + "." + .serverVersion.minor')
out=$repo/crates/pipeline/schemas/kubernetes-v$minor
echo "update-schemas: kube-apiserver $version" >&2

mkdir -p "$work/docs"
kubectl get --raw /openapi/v3 |
  jq -r '.paths | to_entries[]
         | select(.key == "api/v1" or (.key | test("^apis/[^/]+/[^/]+$")))
         | "\(.key) \(.value.serverRelativeURL)"' |
  sort >"$work/paths"
count=0
while read -r gv url; do
  kubectl get --raw "$url" >"$work/docs/${gv//\//_}.json"
  count=$((count + 1))
done <"$work/paths"
echo "update-schemas: fetched $count group-versions" >&2

mkdir -p "$out"
# Merge the schemas of every document (a name seen twice keeps one copy, with the union of its
# x-kubernetes-group-version-kind lists), then strip documentation.
jq -n -c -S --arg version "$version" --rawfile paths "$work/paths" '
  def strip:
    walk(if type == "object" then
           (if (.description | type) == "string" then del(.description) else . end)
           | del(.["x-kubernetes-patch-strategy"], .["x-kubernetes-patch-merge-key"])
         else . end);
  reduce inputs.components.schemas as $doc ({};
    reduce ($doc | to_entries[]) as $e (.;
      if has($e.key) and ($e.value["x-kubernetes-group-version-kind"] != null) then
        .[$e.key]["x-kubernetes-group-version-kind"] =
          (.[$e.key]["x-kubernetes-group-version-kind"] + $e.value["x-kubernetes-group-version-kind"]
           | unique)
      elif has($e.key) then .
      else .[$e.key] = $e.value end))
  | strip
  | {kubernetesVersion: $version,
     groupVersions: ($paths | split("\n") | map(select(length > 0) | split(" ")[0])),
     schemas: .}
' "$work"/docs/*.json >"$out/schemas.json.tmp"
mv "$out/schemas.json.tmp" "$out/schemas.json"
echo "update-schemas: wrote $out/schemas.json ($(wc -c <"$out/schemas.json") bytes," \
  "$(jq '.schemas | length' "$out/schemas.json") schemas)" >&2
