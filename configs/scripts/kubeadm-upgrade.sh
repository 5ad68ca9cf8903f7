#!/usr/bin/env bash
# Upgrade this node to KUBERNETES_VERSION the way kubeadm requires, then print its versions as one
# JSON line. ROLE says which kubeadm step applies:
#   first          kubeadm upgrade plan + kubeadm upgrade apply (the cluster's control plane)
#   control-plane  kubeadm upgrade node (this node's static pods, after `first`)
#   worker         kubeadm upgrade node (the kubelet configuration)
# each with --config UPGRADE_CONFIG, the node's UpgradeConfiguration (configs/kubeadm.py: the target
# version, and the patches that keep the node's static pods and kubelet settings); then the containerd
# configuration on stdin (the new version's sandbox image; containerd restarts while the node is
# drained), the kubelet and kubectl packages at the pinned version and a kubelet restart. Cordon and
# drain happen before this step (node-drain.sh on the first control-plane node), and on a
# control-plane node its HAProxy backend is already drained (haproxy-backend.sh on every LB node).
# Idempotent: a node already at the version (kubeadm, kubelet and, on a control-plane node, the
# kube-apiserver manifest) changes nothing: that is what a first deployment finds.
#
# Environment:
#   KUBERNETES_VERSION     x.y.z (required)
#   ROLE                   first | control-plane | worker (required)
#   NODE_NAME              for the report (required)
#   UPGRADE_CONFIG         path of the node's UpgradeConfiguration, placed by file-set.sh (required)
#   KUBERNETES_APT_SOURCE  optional one-line apt source (a new minor needs its own Kubernetes apt source)
#   HAKUBE_ROOT            prefix for every path (tests point it at a scratch root)
# Stdin: /etc/containerd/config.toml as configs/containerd.py renders it for KUBERNETES_VERSION.
set -euo pipefail

script_name="kubeadm-upgrade"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${KUBERNETES_VERSION:?KUBERNETES_VERSION is required (x.y.z)}"
: "${ROLE:?ROLE is required (first, control-plane or worker)}"
: "${NODE_NAME:?NODE_NAME is required}"
: "${UPGRADE_CONFIG:?UPGRADE_CONFIG is required (the UpgradeConfiguration path)}"
want="v${KUBERNETES_VERSION}"
manifest="$root/etc/kubernetes/manifests/kube-apiserver.yaml"

case "$ROLE" in
  first | control-plane | worker) ;;
  *) log "unknown ROLE $ROLE"; exit 2 ;;
esac

kubeadm_version() { kubeadm version -o short 2>/dev/null || true; }
kubelet_version() { kubelet --version 2>/dev/null | awk '{print $2}' || true; }
# The image tag of this node's kube-apiserver static pod: what `kubeadm upgrade apply/node` changes.
apiserver_version() {
  [[ -f "$manifest" ]] || return 0
  sed -nE 's/^[[:space:]]*image:[[:space:]]*[^[:space:]]*kube-apiserver:(v[^[:space:]"]+).*$/\1/p' "$manifest" | head -n 1
}

report() {
  printf '{"node":"%s","role":"%s","version":"%s","kubeadm":"%s","kubelet":"%s","apiserver":"%s","changed":%s}\n' \
    "$NODE_NAME" "$ROLE" "$KUBERNETES_VERSION" "$(kubeadm_version)" "$(kubelet_version)" "$(apiserver_version)" "$1"
}

control_plane_done() { [[ "$ROLE" == worker || "$(apiserver_version)" == "$want" ]]; }

if [[ "$(kubeadm_version)" == "$want" && "$(kubelet_version)" == "$want" ]] && control_plane_done; then
  log "$NODE_NAME is already at $want; nothing to do"
  report false
  exit 0
fi

# kubeadm reads the version and the patches from the file; one left from another version is refused.
upgrade_config="$root$UPGRADE_CONFIG"
[[ -f "$upgrade_config" ]] || fail "no UpgradeConfiguration at $UPGRADE_CONFIG"
if [[ "$ROLE" == first ]] && ! grep -Eq "^[[:space:]]+kubernetesVersion: v${KUBERNETES_VERSION//./\\.}\$" "$upgrade_config"; then
  fail "$UPGRADE_CONFIG does not upgrade to $want (placed by another version?)"
fi
containerd_config=""
[[ -t 0 ]] || containerd_config="$(cat)"
is_containerd_config "$containerd_config" || fail "no containerd configuration on stdin"

write_kubernetes_apt_source
apt_update
package="$(kubernetes_candidate "$KUBERNETES_VERSION")"
[[ -n "$package" ]] || fail "no kubeadm $KUBERNETES_VERSION-* in the configured apt sources (set packages.kubernetesAptSource)"

if [[ "$(kubeadm_version)" != "$want" ]]; then
  install_held "$package" kubeadm
fi

if ! control_plane_done || [[ "$ROLE" == worker ]]; then
  if [[ "$ROLE" == first ]]; then
    kubeadm upgrade plan --config "$UPGRADE_CONFIG" >&2
    kubeadm upgrade apply --config "$UPGRADE_CONFIG" --yes >&2
  else
    kubeadm upgrade node --config "$UPGRADE_CONFIG" >&2
  fi
fi
install_containerd_config <<<"$containerd_config"

if [[ "$(kubelet_version)" != "$want" ]]; then
  install_held "$package" kubelet kubectl
  systemctl daemon-reload
  systemctl restart kubelet
fi
log "$NODE_NAME upgraded to $want"
report true
