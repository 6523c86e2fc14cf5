#!/usr/bin/env bash
# Benchmark: `ferry validate` against kubectl on the same corpus of manifests.
#
#   bench/validate/run.sh [FILES] [OBJECTS_PER_FILE]     (default 600 files x 5 objects)
#
# Generates a corpus (each file: a Deployment, two Services, two ConfigMaps), builds ferry in
# release mode, starts a local control plane (scripts/local-cluster.sh) for kubectl's discovery,
# and times, on the same files:
#
#   ferry    ferry validate DIR                                                   offline, full schema check
#   client   kubectl create --dry-run=client -R -f DIR -o name                    the usual CI step
#   parse    kubectl create --dry-run=client --validate=false -R -f DIR -o name   parse + mapping only
#   server   kubectl create --dry-run=server -R -f DIR -o name                    the API server's checks
#
# Why four. kubectl's client dry run checks no schema: against a server that supports field
# validation (every server since 1.27) its default `--validate=strict` is left to the server,
# so a quoted `replicas` or a misspelled field passes. Yet it is slow: for every object it reads
# the server's OpenAPI v3 document again to learn that the server validates fields. It is the
# step pipelines commonly run, so it is the baseline (`client`). `--validate=false` leaves only
# parsing and mapping kinds to resources through discovery: less work than ferry does, the
# lower bound (`parse`). `--dry-run=server` does what `ferry validate` does (types, unknown and
# required fields, names) and more (admission), but needs a reachable cluster and sends one
# request per object, paced by kubectl's client-side rate limit (`server`). ferry and the
# parse-only run 5 times, the client dry run 3 times, the server dry run once; the median is
# reported. Results go to bench/results/validate-<UTC date>.json.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
files=${1:-600}
per_file=${2:-5}
for tool in kubectl cargo; do
  command -v "$tool" >/dev/null || { echo "bench: '$tool' is not on PATH" >&2; exit 2; }
done
if (( per_file < 1 || per_file > 5 )); then
  echo "bench: OBJECTS_PER_FILE must be 1 to 5" >&2
  exit 2
fi

work=$(mktemp -d)
cluster=$work/cluster
cleanup() {
  "$repo/scripts/local-cluster.sh" down "$cluster" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

say() { printf '==> [bench] %s\n' "$*" >&2; }

# --- corpus ---------------------------------------------------------------------------------
corpus=$work/corpus
say "generating $files files x $per_file objects in $corpus"
write_file() {
  local i=$1 out=$2
  {
    cat <<YAML
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-$i
  labels: {app.kubernetes.io/name: app-$i, bench: "true"}
spec:
  replicas: 2
  selector:
    matchLabels: {app.kubernetes.io/name: app-$i}
  template:
    metadata:
      labels: {app.kubernetes.io/name: app-$i}
    spec:
      containers:
        - name: app
          image: registry.example.com/app-$i:1.0.$i
          ports:
            - {name: http, containerPort: 8080}
          env:
            - {name: LOG_LEVEL, value: info}
            - name: SETTINGS
              valueFrom:
                configMapKeyRef: {name: app-$i-settings, key: mode}
          resources:
            requests: {cpu: 100m, memory: 64Mi}
            limits: {memory: 128Mi}
          readinessProbe:
            httpGet: {path: /healthz, port: http}
YAML
    if (( per_file >= 2 )); then
      cat <<YAML
---
apiVersion: v1
kind: Service
metadata:
  name: app-$i
spec:
  selector: {app.kubernetes.io/name: app-$i}
  ports:
    - {name: http, port: 80, targetPort: http}
YAML
    fi
    if (( per_file >= 3 )); then
      cat <<YAML
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-$i-settings
data:
  mode: fast
  retries: "3"
YAML
    fi
    if (( per_file >= 4 )); then
      cat <<YAML
---
apiVersion: v1
kind: Service
metadata:
  name: app-$i-metrics
  labels: {app.kubernetes.io/name: app-$i}
spec:
  type: ClusterIP
  selector: {app.kubernetes.io/name: app-$i}
  ports:
    - {name: metrics, port: 9090, targetPort: 9090, protocol: TCP}
YAML
    fi
    if (( per_file >= 5 )); then
      cat <<YAML
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-$i-dashboard
  labels: {grafana_dashboard: "1"}
data:
  dashboard.json: |
    {"title": "app-$i", "panels": []}
YAML
    fi
  } >"$out"
}
for ((i = 0; i < files; i++)); do
  dir=$corpus/team-$((i % 10))
  mkdir -p "$dir"
  write_file "$i" "$dir/app-$i.yaml"
done
objects=$((files * per_file))

# --- tools ----------------------------------------------------------------------------------
say "building ferry (release)"
(cd "$repo" && cargo build --release -p ferry --quiet)
ferry=$repo/target/release/ferry

say "starting a local control plane for kubectl's discovery"
"$repo/scripts/local-cluster.sh" up "$cluster" >/dev/null 2>"$work/cluster-up.log" || {
  cat "$work/cluster-up.log" >&2
  exit 1
}
export KUBECONFIG=$cluster/kubeconfig
kube_cache=$work/kube-cache

# Runs "$@" RUNS times; prints the median wall time in seconds. Fails when a run fails.
median_seconds() {
  local runs=$1 expect=$2
  shift 2
  local times=() start end out
  for ((r = 0; r < runs; r++)); do
    start=$(date +%s.%N)
    if ! out=$("$@" 2>"$work/stderr"); then
      echo "bench: '$*' failed:" >&2
      tail -5 "$work/stderr" >&2
      return 1
    fi
    end=$(date +%s.%N)
    if [[ -n $expect ]] && (( $(wc -l <<<"$out") != expect )); then
      echo "bench: '$*' printed $(wc -l <<<"$out") lines, expected $expect" >&2
      return 1
    fi
    times+=("$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.4f", b - a }')")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{ t[NR] = $1 } END { print t[int((NR + 1) / 2)] }'
}

say "ferry validate (5 runs)"
ferry_s=$(median_seconds 5 "" "$ferry" validate "$corpus")
say "kubectl create --dry-run=client (warm-up, then 3 runs)"
kubectl create --dry-run=client --cache-dir "$kube_cache" -R -f "$corpus" -o name >/dev/null 2>&1
client_s=$(median_seconds 3 "$objects" kubectl create --dry-run=client --cache-dir "$kube_cache" -R -f "$corpus" -o name)
say "kubectl create --dry-run=client --validate=false (5 runs)"
parse_s=$(median_seconds 5 "$objects" kubectl create --dry-run=client --validate=false --cache-dir "$kube_cache" -R -f "$corpus" -o name)
say "kubectl create --dry-run=server (1 run)"
server_s=$(median_seconds 1 "$objects" kubectl create --dry-run=server --cache-dir "$kube_cache" -R -f "$corpus" -o name)

rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.1f", n / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
mem_kb=$(awk '/MemTotal/ { print $2 }' /proc/meminfo 2>/dev/null || echo 0)
date_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)
kubectl_version=$(kubectl version --client -o json 2>/dev/null | grep -m1 gitVersion | cut -d'"' -f4)
server_version=$(kubectl version -o json 2>/dev/null | grep gitVersion | tail -1 | cut -d'"' -f4)
ferry_version=$("$ferry" --version | awk '{ print $2 }')

mkdir -p "$repo/bench/results"
result=$repo/bench/results/validate-${date_utc//:/}.json
cat >"$result" <<JSON
{
  "benchmark": "validate",
  "date": "$date_utc",
  "machine": {
    "os": "$(uname -srm)",
    "cpu": "${cpu:-unknown}",
    "cores": $(nproc),
    "memory_mib": $((mem_kb / 1024))
  },
  "corpus": {"files": $files, "objects": $objects, "kinds": ["Deployment", "Service", "ConfigMap"]},
  "versions": {"ferry": "$ferry_version", "kubectl": "$kubectl_version", "kube_apiserver": "$server_version"},
  "results": {
    "ferry_validate": {
      "command": "ferry validate DIR",
      "runs": 5, "median_seconds": $ferry_s,
      "files_per_second": $(rate "$files" "$ferry_s"), "objects_per_second": $(rate "$objects" "$ferry_s")
    },
    "kubectl_dry_run_client": {
      "command": "kubectl create --dry-run=client -R -f DIR -o name",
      "schema_checked": false,
      "runs": 3, "median_seconds": $client_s,
      "files_per_second": $(rate "$files" "$client_s"), "objects_per_second": $(rate "$objects" "$client_s")
    },
    "kubectl_dry_run_client_no_validate": {
      "command": "kubectl create --dry-run=client --validate=false -R -f DIR -o name",
      "schema_checked": false,
      "runs": 5, "median_seconds": $parse_s,
      "files_per_second": $(rate "$files" "$parse_s"), "objects_per_second": $(rate "$objects" "$parse_s")
    },
    "kubectl_dry_run_server": {
      "command": "kubectl create --dry-run=server -R -f DIR -o name",
      "schema_checked": true,
      "runs": 1, "median_seconds": $server_s,
      "files_per_second": $(rate "$files" "$server_s"), "objects_per_second": $(rate "$objects" "$server_s")
    }
  },
  "speedup": {
    "ferry_vs_kubectl_dry_run_client": $(ratio "$client_s" "$ferry_s"),
    "ferry_vs_kubectl_dry_run_client_no_validate": $(ratio "$parse_s" "$ferry_s"),
    "ferry_vs_kubectl_dry_run_server": $(ratio "$server_s" "$ferry_s")
  }
}
JSON

printf '\n%-36s %10s %12s %14s\n' "check" "seconds" "files/s" "objects/s"
printf '%-36s %10s %12s %14s\n' "ferry validate" "$ferry_s" "$(rate "$files" "$ferry_s")" "$(rate "$objects" "$ferry_s")"
printf '%-36s %10s %12s %14s\n' "kubectl create --dry-run=client" "$client_s" "$(rate "$files" "$client_s")" "$(rate "$objects" "$client_s")"
printf '%-36s %10s %12s %14s\n' "  ... --validate=false" "$parse_s" "$(rate "$files" "$parse_s")" "$(rate "$objects" "$parse_s")"
printf '%-36s %10s %12s %14s\n' "kubectl create --dry-run=server" "$server_s" "$(rate "$files" "$server_s")" "$(rate "$objects" "$server_s")"
printf '\nferry is %sx the speed of the client dry run (%sx with --validate=false) and %sx that of the server dry run\n' \
  "$(ratio "$client_s" "$ferry_s")" "$(ratio "$parse_s" "$ferry_s")" "$(ratio "$server_s" "$ferry_s")"
echo "wrote $result"
