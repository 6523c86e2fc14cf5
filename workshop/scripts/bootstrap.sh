#!/usr/bin/env bash
# Exercise 01, from your machine: runs workshop/vm/bootstrap.sh inside the VM (build or fetch
# ferry, install it, apply the root app, wait for Synced and Healthy). Pass FERRY_RELEASE and
# FERRY_RELEASE_REPO to use a published release instead of building (see vm/bootstrap.sh).
set -euo pipefail

workshop=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$workshop"
command -v vagrant >/dev/null || { echo "bootstrap: vagrant is not installed (README: what you need)" >&2; exit 1; }
if ! vagrant status ops-demo --machine-readable 2>/dev/null | grep -q ',state,running'; then
  echo "bootstrap: the VM is not running; start it with: cd workshop && vagrant up" >&2
  exit 1
fi
env_args=()
[[ -n ${FERRY_RELEASE:-} ]] && env_args+=("FERRY_RELEASE=$FERRY_RELEASE")
[[ -n ${FERRY_RELEASE_REPO:-} ]] && env_args+=("FERRY_RELEASE_REPO=$FERRY_RELEASE_REPO")
vagrant ssh ops-demo -c "sudo ${env_args[*]} bash /vagrant/workshop/vm/bootstrap.sh"
