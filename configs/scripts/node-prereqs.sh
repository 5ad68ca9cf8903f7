#!/usr/bin/env bash
# Node prerequisites for kubeadm: swap off, kernel modules, sysctls, containerd with the
# systemd cgroup driver, kubelet/kubeadm/kubectl pinned to one version and held.
# Idempotent: a second run writes nothing, restarts nothing and installs nothing.
#
# Environment:
#   KUBERNETES_VERSION   x.y.z to install (required)
#   KUBERNETES_APT_SOURCE  optional one-line apt source for the Kubernetes packages; without it the
#                        host's configured apt sources must offer the pinned version
#   ETCD_CLIENT          true on control-plane nodes: install etcdctl (etcd-client), which removing
#                        a control-plane node's etcd member needs (kubeadm ships none on the host)
#   HAKUBE_ROOT          prefix for every path (tests point it at a scratch root)
set -euo pipefail

: "${KUBERNETES_VERSION:?KUBERNETES_VERSION is required (x.y.z)}"
root="${HAKUBE_ROOT:-}"
export DEBIAN_FRONTEND=noninteractive

log() { printf 'node-prereqs: %s\n' "$*"; }
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"


installed_version() {
  dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true
}

disable_swap() {
  if [[ -r "$root/proc/swaps" ]] && [[ "$(wc -l <"$root/proc/swaps")" -gt 1 ]]; then
    swapoff -a
    log "swap turned off"
  fi
  local fstab="$root/etc/fstab"
  # The kubelet refuses to start with swap on: keep it off across reboots too.
  if [[ -f "$fstab" ]] && grep -Eq '^[^#].*[[:space:]]swap[[:space:]]' "$fstab"; then
    sed -i -E 's/^([^#].*[[:space:]]swap[[:space:]].*)$/# disabled by hakube: \1/' "$fstab"
    log "swap entries commented out in /etc/fstab"
  fi
}

load_modules() {
  write_if_changed "$root/etc/modules-load.d/hakube-k8s.conf" $'overlay\nbr_netfilter' || true
  local module
  for module in overlay br_netfilter; do
    [[ -d "$root/sys/module/$module" ]] || modprobe "$module"
  done
}

apply_sysctls() {
  if write_if_changed "$root/etc/sysctl.d/99-hakube-k8s.conf" \
    $'net.bridge.bridge-nf-call-iptables = 1\nnet.bridge.bridge-nf-call-ip6tables = 1\nnet.ipv4.ip_forward = 1'; then
    sysctl --system >/dev/null
  fi
}

configure_containerd() {
  if [[ -z "$(installed_version containerd)" ]]; then
    apt-get update -q
    apt-get install -y -q containerd
  fi
  local config="$root/etc/containerd/config.toml" rendered
  # Start from containerd's own defaults so the file matches the installed release.
  rendered="$(containerd config default | sed -E 's/^([[:space:]]*SystemdCgroup[[:space:]]*=[[:space:]]*)false/\1true/')"
  if ! grep -Eq 'SystemdCgroup[[:space:]]*=[[:space:]]*true' <<<"$rendered"; then
    echo "node-prereqs: containerd's default config has no SystemdCgroup switch to turn on" >&2
    exit 1
  fi
  if write_if_changed "$config" "$rendered"; then
    systemctl restart containerd
  fi
  systemctl is-enabled --quiet containerd || systemctl enable --now containerd
}

install_kubernetes_packages() {
  local wanted="$KUBERNETES_VERSION" current
  current="$(installed_version kubeadm)"
  if [[ "$current" == "$wanted"-* ]] && [[ "$(installed_version kubelet)" == "$wanted"-* ]] \
    && [[ "$(installed_version kubectl)" == "$wanted"-* ]]; then
    return 0
  fi
  if [[ -n "${KUBERNETES_APT_SOURCE:-}" ]]; then
    write_if_changed "$root/etc/apt/sources.list.d/hakube-kubernetes.list" "$KUBERNETES_APT_SOURCE" || true
  fi
  apt-get update -q
  local candidate
  candidate="$(apt-cache madison kubeadm | awk -v v="$wanted" '$3 ~ "^"v"-" {print $3; exit}')"
  if [[ -z "$candidate" ]]; then
    echo "node-prereqs: no kubeadm $wanted-* in the configured apt sources (set packages.kubernetesAptSource)" >&2
    exit 1
  fi
  apt-mark unhold kubelet kubeadm kubectl >/dev/null 2>&1 || true
  apt-get install -y -q --allow-downgrades "kubelet=$candidate" "kubeadm=$candidate" "kubectl=$candidate"
  apt-mark hold kubelet kubeadm kubectl >/dev/null
  log "installed kubelet, kubeadm and kubectl $candidate (held)"
}

install_etcd_client() {
  [[ "${ETCD_CLIENT:-false}" == true ]] || return 0
  [[ -n "$(installed_version etcd-client)" ]] && return 0
  apt-get install -y -q etcd-client
  log "installed etcd-client (etcdctl)"
}

enable_kubelet() {
  systemctl is-enabled --quiet kubelet || systemctl enable kubelet
}

disable_swap
load_modules
apply_sysctls
configure_containerd
install_kubernetes_packages
install_etcd_client
enable_kubelet
log "ready for kubeadm $KUBERNETES_VERSION"
