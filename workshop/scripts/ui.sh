#!/usr/bin/env bash
# From your machine: checks that the workshop's web UIs answer and prints (or, with --open,
# opens) their addresses. Before exercise 03 there is no ingress yet; then it forwards ferry's UI
# to http://127.0.0.1:8080 through the VM instead.
set -euo pipefail

workshop=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
open_cmd=
if [[ ${1:-} == --open ]]; then
  open_cmd=$(command -v xdg-open || command -v open || true)
fi

up=0
for host in ferry podinfo grafana; do
  url=http://$host.192.168.56.200.nip.io
  code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "$url" || true)
  if [[ $code =~ ^[23] ]]; then
    echo "ok   $url"
    up=$((up + 1))
    [[ -n $open_cmd ]] && "$open_cmd" "$url" >/dev/null 2>&1 &
  else
    echo "--   $url (HTTP ${code:-none}: not there yet, or see docs/vm-setup.md)"
  fi
done

if ((up == 0)); then
  echo "No ingress answers yet. Forwarding ferry's UI to http://127.0.0.1:8080 (Ctrl-C stops it)."
  cd "$workshop"
  vagrant ssh ops-demo -c "kubectl port-forward -n ferry service/ferry 8080:80 --address 0.0.0.0" -- -L 8080:127.0.0.1:8080
fi
