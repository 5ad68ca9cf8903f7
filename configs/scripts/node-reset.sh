#!/usr/bin/env bash
# Undo kubeadm init/join on this node: `kubeadm reset -f` (stops the kubelet, removes the static
# pods, certificates, kubeconfigs, /var/lib/kubelet and the local etcd data), then the CNI
# configuration in /etc/cni/net.d, which kubeadm leaves behind.
# iptables/IPVS rules that kube-proxy and the CNI made are left in place (flushing them on a live
# host could cut its own traffic): a reboot, or `iptables -F && iptables -t nat -F && iptables -X`
# done by hand, clears them.
# Idempotent: a node without any kubeadm state is "already reset" and nothing is called.
#
# Environment: HAKUBE_ROOT (prefix for every path; tests point it at a scratch root).
set -euo pipefail

script_name="node-reset"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cni="$root/etc/cni/net.d"

has_state() {
  local path
  for path in etc/kubernetes/kubelet.conf etc/kubernetes/admin.conf etc/kubernetes/pki var/lib/kubelet/config.yaml \
    var/lib/etcd/member; do
    [[ -e "$root/$path" ]] && return 0
  done
  compgen -G "$root/etc/kubernetes/manifests/*" >/dev/null || compgen -G "$cni/*" >/dev/null
}

if ! has_state; then
  log "no kubeadm state on this node; already reset"
  exit 0
fi

kubeadm reset -f 2>&1 | sed -E 's/[a-z0-9]{6}\.[a-z0-9]{16}/[redacted-token]/g' >&2
if compgen -G "$cni/*" >/dev/null; then
  rm -rf "${cni:?}"/*
  log "removed the CNI configuration in /etc/cni/net.d"
fi
log "reset; iptables/IPVS rules left in place (reboot or flush them by hand)"
