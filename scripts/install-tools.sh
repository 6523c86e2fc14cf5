#!/usr/bin/env bash
# Installs the pinned `helm` and `kustomize` that ferry renders Helm and Kustomize sources with,
# and the `sops` that the SOPS interoperability tests (and the workshop) use, built from their Go
# modules into target/tools/bin/ of this repository. Only the Go module proxy
# is used (no downloads from GitHub). A tool already there at the pinned version is kept.
#
#   scripts/install-tools.sh          # then: export FERRY_HELM=$PWD/target/tools/bin/helm ...
#
# The tests of crates/source find the binaries in target/tools/bin/; ferry itself uses
# FERRY_HELM / FERRY_KUSTOMIZE (full paths) or `helm` / `kustomize` on PATH.
set -euo pipefail

HELM_VERSION=v3.22.0
# The newest kustomize v5 whose go.mod this Go toolchain accepts (v5.8.3 wants go >= 1.27).
KUSTOMIZE_VERSION=v5.8.2
# sops's go.mod has no replace directives, so `go install` builds it as published.
SOPS_VERSION=v3.13.3

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin="$repo/target/tools/bin"
mkdir -p "$bin"

say() { printf '==> [tools] %s\n' "$*"; }

# Builds a Go command into $bin, never switching toolchains behind the user's back.
go_install() {
  local pkg=$1 ldflags=${2:-}
  GOBIN="$bin" GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0 \
    go install -ldflags="$ldflags" "$pkg"
}

# The link flags helm's own Makefile sets: its version, and the default Kubernetes version of
# `helm template` (.Capabilities.KubeVersion) derived from the client-go it is built with.
helm_ldflags() {
  local gomod client_go minor
  gomod=$(GOTOOLCHAIN=local go mod download -json "helm.sh/helm/v3@$HELM_VERSION" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  client_go=$(awk '$1 == "k8s.io/client-go" { print $2 }' "$gomod")
  minor=$(cut -d. -f2 <<<"$client_go")
  if [[ -z $minor ]]; then
    echo "could not read the client-go version from $gomod" >&2
    exit 1
  fi
  printf '%s' "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    " -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
    " -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1" \
    " -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor" \
    " -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1" \
    " -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
}

if ! command -v go >/dev/null; then
  echo "go is not on PATH: install Go 1.26 or newer and run again" >&2
  exit 1
fi

have_helm=""
if [[ -x $bin/helm ]]; then
  have_helm=$("$bin/helm" version --template '{{.Version}}' 2>/dev/null || true)
fi
if [[ $have_helm == "$HELM_VERSION" ]]; then
  say "helm $HELM_VERSION already in $bin"
else
  say "building helm $HELM_VERSION into $bin (first time: a few minutes)"
  go_install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" "$(helm_ldflags)"
  have_helm=$("$bin/helm" version --template '{{.Version}}')
  if [[ $have_helm != "$HELM_VERSION" ]]; then
    echo "built helm reports version '$have_helm', expected $HELM_VERSION" >&2
    exit 1
  fi
  say "helm $have_helm installed"
fi

# `kustomize version` prints the module version (v5.8.2) when built with `go install`.
have_kustomize=""
if [[ -x $bin/kustomize ]]; then
  have_kustomize=$("$bin/kustomize" version 2>/dev/null || true)
fi
if [[ $have_kustomize == "$KUSTOMIZE_VERSION" ]]; then
  say "kustomize $KUSTOMIZE_VERSION already in $bin"
else
  say "building kustomize $KUSTOMIZE_VERSION into $bin (first time: a few minutes)"
  go_install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
  have_kustomize=$("$bin/kustomize" version)
  if [[ $have_kustomize != "$KUSTOMIZE_VERSION" ]]; then
    echo "built kustomize reports version '$have_kustomize', expected $KUSTOMIZE_VERSION" >&2
    exit 1
  fi
  say "kustomize $have_kustomize installed"
fi

# `sops --version` prints "sops 3.13.3" (and, offline, a warning about the update check).
have_sops=""
if [[ -x $bin/sops ]]; then
  have_sops=$(SOPS_DISABLE_VERSION_CHECK=1 "$bin/sops" --version 2>/dev/null | awk 'NR == 1 { print "v" $2 }' || true)
fi
if [[ $have_sops == "$SOPS_VERSION" ]]; then
  say "sops $SOPS_VERSION already in $bin"
else
  say "building sops $SOPS_VERSION into $bin (first time: a few minutes)"
  go_install "github.com/getsops/sops/v3/cmd/sops@$SOPS_VERSION"
  have_sops=$(SOPS_DISABLE_VERSION_CHECK=1 "$bin/sops" --version 2>/dev/null | awk 'NR == 1 { print "v" $2 }')
  if [[ $have_sops != "$SOPS_VERSION" ]]; then
    echo "built sops reports version '$have_sops', expected $SOPS_VERSION" >&2
    exit 1
  fi
  say "sops $have_sops installed"
fi

say "done: $bin/helm, $bin/kustomize, $bin/sops"
