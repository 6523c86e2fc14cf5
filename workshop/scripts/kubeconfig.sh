#!/usr/bin/env bash
# From your machine: writes the VM's kubeconfig to workshop/.kube/config (git-ignored), with the
# API server at the VM's host-only address, for a kubectl or k9s on your machine.
set -euo pipefail

workshop=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$workshop"
mkdir -p .kube
vagrant ssh ops-demo -c "sudo cat /etc/rancher/k3s/k3s.yaml" 2>/dev/null |
  sed 's|https://127.0.0.1:6443|https://192.168.56.10:6443|' >.kube/config
if ! grep -q 'server: https://192.168.56.10:6443' .kube/config; then
  echo "kubeconfig: could not read the kubeconfig from the VM; is it running (vagrant status)?" >&2
  exit 1
fi
chmod 600 .kube/config
echo "export KUBECONFIG=$workshop/.kube/config"
