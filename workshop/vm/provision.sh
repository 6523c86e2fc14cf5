#!/usr/bin/env bash
# Runs inside the VM as root when Vagrant provisions it (vagrant up / vagrant provision):
# packages, k3s at K3S_VERSION on the host-only address VM_IP (without traefik and servicelb),
# helm at HELM_VERSION, and a kubeconfig for the vagrant user. Safe to run again.
set -euo pipefail

: "${K3S_VERSION:?set by the Vagrantfile}" "${HELM_VERSION:?set by the Vagrantfile}" "${VM_IP:?set by the Vagrantfile}"
say() { printf '==> [provision %4ss] %s\n' "$SECONDS" "$*"; }

say "Debian packages: git, curl, jq, Docker (to build ferry's image)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends ca-certificates curl git jq docker.io >/dev/null
usermod -aG docker vagrant

if [[ $(k3s --version 2>/dev/null | head -n1) != *"$K3S_VERSION"* ]]; then
  say "k3s $K3S_VERSION (traefik and servicelb disabled; node address $VM_IP)"
  iface=$(ip -o -4 addr show | awk -v ip="$VM_IP" '$4 ~ "^"ip"/" {print $2; exit}')
  if [[ -z $iface ]]; then
    echo "provision: no network interface has $VM_IP; is the host-only network there? (docs/vm-setup.md)" >&2
    exit 1
  fi
  curl -sfL https://get.k3s.io | INSTALL_K3S_VERSION="$K3S_VERSION" sh -s - server \
    --disable traefik --disable servicelb \
    --node-ip "$VM_IP" --advertise-address "$VM_IP" --flannel-iface "$iface" \
    --tls-san "$VM_IP" --write-kubeconfig-mode 0644
else
  say "k3s $K3S_VERSION is installed"
fi

if [[ $(helm version --short 2>/dev/null) != "$HELM_VERSION"* ]]; then
  say "helm $HELM_VERSION"
  arch=$(dpkg --print-architecture)
  tmp=$(mktemp -d)
  curl -sfL -o "$tmp/helm.tgz" "https://get.helm.sh/helm-$HELM_VERSION-linux-$arch.tar.gz"
  curl -sfL -o "$tmp/helm.tgz.sha256sum" "https://get.helm.sh/helm-$HELM_VERSION-linux-$arch.tar.gz.sha256sum"
  (cd "$tmp" && echo "$(cut -d' ' -f1 helm.tgz.sha256sum)  helm.tgz" | sha256sum --check --quiet)
  tar -xzf "$tmp/helm.tgz" -C "$tmp"
  install -m 0755 "$tmp/linux-$arch/helm" /usr/local/bin/helm
  rm -rf "$tmp"
fi

say "kubeconfig for the vagrant user"
install -d -o vagrant -g vagrant /home/vagrant/.kube
install -m 0600 -o vagrant -g vagrant /etc/rancher/k3s/k3s.yaml /home/vagrant/.kube/config
cat >/etc/profile.d/workshop.sh <<'SH'
export KUBECONFIG=$HOME/.kube/config
cd /vagrant 2>/dev/null || true
SH

say "waiting for the node to be Ready"
for _ in $(seq 1 60); do
  if kubectl get nodes 2>/dev/null | grep -q ' Ready'; then
    kubectl get nodes -o wide
    say "done; next: workshop/scripts/bootstrap.sh on your machine (exercise 01)"
    exit 0
  fi
  sleep 5
done
echo "provision: the node did not become Ready within 5 minutes; see docs/vm-setup.md (node NotReady)" >&2
journalctl -u k3s --no-pager | tail -n 30 >&2
exit 1
