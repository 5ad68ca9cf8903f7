#!/usr/bin/env bash
# Node prerequisites for kubeadm: cgroup v2, swap off, kernel modules, sysctls, containerd 2.x with
# hakube's configuration (stdin: config version 3, the systemd cgroup driver, kubeadm's pause),
# kubelet/kubeadm/kubectl pinned to one version and held.
# Refuses, before changing anything, a host on cgroup v1 (the kubelet no longer starts there from
# 1.35) and containerd 1.x installed or offered (it lacks the RuntimeConfig call the kubelet asks for
# its cgroup driver, and config version 3).
# Idempotent: a second run writes nothing, restarts nothing and installs nothing.
#
# Stdin: /etc/containerd/config.toml as configs/containerd.py renders it (required).
#
# Environment:
#   KUBERNETES_VERSION   x.y.z to install (required)
#   KUBERNETES_APT_SOURCE  optional one-line apt source for the Kubernetes packages; without it the
#                        host's configured apt sources must offer the pinned version
#   ETCD_CLIENT          true on control-plane nodes: install etcdctl (etcd-client), which removing
#                        a control-plane node's etcd member needs (kubeadm ships none on the host)
#   HAKUBE_ROOT          prefix for every path (tests point it at a scratch root)
set -euo pipefail

script_name="node-prereqs"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${KUBERNETES_VERSION:?KUBERNETES_VERSION is required (x.y.z)}"

# The containerd package in use: Ubuntu's containerd, or Docker's containerd.io when that is installed.
CONTAINERD_PACKAGES=(containerd containerd.io)
CONTAINERD_ADVICE="install containerd 2.x from the distribution (Ubuntu 24.04 noble-updates ships 2.2.1, 26.04 ships 2.2.2), e.g. apt-get install containerd, then run hakube again"

# The major version of a Debian package version such as 2.2.1-0ubuntu1~24.04.1 (epoch dropped).
major_of() {
  local version="${1#*:}"
  printf '%s' "${version%%.*}"
}

check_cgroup_v2() {
  [[ -f "$root/sys/fs/cgroup/cgroup.controllers" ]] && return 0
  fail "this host runs cgroup v1 (no /sys/fs/cgroup/cgroup.controllers); the kubelet no longer starts" \
    "on cgroup v1 from Kubernetes 1.35. Boot with the unified hierarchy: add systemd.unified_cgroup_hierarchy=1" \
    "to GRUB_CMDLINE_LINUX in /etc/default/grub, run update-grub and reboot, then run hakube again"
}

installed_containerd() {
  local pkg version
  for pkg in "${CONTAINERD_PACKAGES[@]}"; do
    version="$(installed_version "$pkg")"
    if [[ -n "$version" ]]; then
      printf '%s' "$version"
      return 0
    fi
  done
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

# containerd 2.x installed, or (none installed) offered by apt: then its version is left in
# containerd_candidate for configure_containerd, so a 1.x never lands on the node.
containerd_candidate=""
check_containerd() {
  local version
  version="$(installed_containerd)"
  if [[ -n "$version" ]]; then
    [[ "$(major_of "$version")" -ge 2 ]] && return 0
    fail "containerd $version is installed, but Kubernetes 1.35+ needs containerd 2.x (the kubelet asks the" \
      "runtime for its cgroup driver; config version 3). Drain the node and upgrade it: $CONTAINERD_ADVICE"
  fi
  apt_update
  containerd_candidate="$(apt-cache policy containerd | awk '$1 == "Candidate:" {print $2; exit}')"
  if [[ -z "$containerd_candidate" || "$containerd_candidate" == "(none)" ]]; then
    fail "no containerd package in the configured apt sources; $CONTAINERD_ADVICE"
  fi
  if [[ "$(major_of "$containerd_candidate")" -lt 2 ]]; then
    fail "apt offers containerd $containerd_candidate, but Kubernetes 1.35+ needs containerd 2.x; $CONTAINERD_ADVICE"
  fi
}

configure_containerd() {
  if [[ -n "$containerd_candidate" ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "containerd=$containerd_candidate" >&2
    log "installed containerd $containerd_candidate"
  fi
  install_containerd_config <<<"$containerd_config" || exit 1
  systemctl is-enabled --quiet containerd || systemctl enable --now containerd
}

install_kubernetes_packages() {
  local wanted="$KUBERNETES_VERSION" current
  current="$(installed_version kubeadm)"
  if [[ "$current" == "$wanted"-* ]] && [[ "$(installed_version kubelet)" == "$wanted"-* ]] \
    && [[ "$(installed_version kubectl)" == "$wanted"-* ]]; then
    return 0
  fi
  write_kubernetes_apt_source
  apt_update
  local candidate
  candidate="$(kubernetes_candidate "$wanted")"
  [[ -n "$candidate" ]] || fail "no kubeadm $wanted-* in the configured apt sources (set packages.kubernetesAptSource)"
  install_held "$candidate" kubelet kubeadm kubectl
  log "installed kubelet, kubeadm and kubectl $candidate (held)"
}

install_etcd_client() {
  [[ "${ETCD_CLIENT:-false}" == true ]] || return 0
  install_missing_packages etcd-client
}

enable_kubelet() {
  systemctl is-enabled --quiet kubelet || systemctl enable kubelet
}

# Read first, before anything can consume stdin; checked (and refused) before anything changes.
containerd_config=""
[[ -t 0 ]] || containerd_config="$(cat)"
is_containerd_config "$containerd_config" ||
  fail "no containerd configuration (config version 3, configs/containerd.py) on stdin"
check_cgroup_v2
check_containerd
disable_swap
load_modules
apply_sysctls
configure_containerd
install_kubernetes_packages
install_etcd_client
enable_kubelet
log "ready for kubeadm $KUBERNETES_VERSION"
