#!/usr/bin/env bash
# kubeadm init on the first control-plane node, once. The config (configs/kubeadm.py init_config)
# and the patches (node_patches) are placed beforehand; a config on stdin replaces the file first.
# kubeadm writes the kubelet config itself, from the KubeletConfiguration document and the node's
# kubeletconfiguration patch.
# Idempotent: with admin.conf present and the API server answering, it does nothing. admin.conf
# present but no answer is an error: running init over an existing control plane is never right.
# kubeadm's output (it names a bootstrap token and the certificate key) goes to stderr, redacted;
# stdout gets one status line.
#
# Environment:
#   KUBEADM_CONFIG  path of the init configuration (default /etc/kubernetes/kubeadm/init.yaml)
#   PATCHES_DIR     kubeadm patches directory (default /etc/kubernetes/patches)
#   ATTEMPTS, INTERVAL  how often and how far apart (s) to ask an existing API server (default 12, 5)
#   HAKUBE_ROOT     prefix for every path (tests point it at a scratch root)
set -euo pipefail

script_name="kubeadm-init"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

config="$root${KUBEADM_CONFIG:-/etc/kubernetes/kubeadm/init.yaml}"
patches="$root${PATCHES_DIR:-/etc/kubernetes/patches}"
admin="$admin_kubeconfig"
attempts="${ATTEMPTS:-12}"
interval="${INTERVAL:-5}"

api_answers() {
  local try
  for ((try = 1; try <= attempts; try++)); do
    kubectl --kubeconfig "$admin" get --raw=/readyz --request-timeout=5s >/dev/null 2>&1 && return 0
    ((try < attempts)) && sleep "$interval"
  done
  return 1
}

# A config on stdin is installed first.
install_stdin_config "$config"

if [[ -f "$admin" ]]; then
  if api_answers; then
    log "the cluster is already initialised (admin.conf present, API server ready); skipped"
    exit 0
  fi
  fail "${admin#"$root"} exists but the API server did not answer after $attempts attempts; not running" \
    "kubeadm init over an existing control plane (repair it, or run node-reset.sh first)"
fi

[[ -s "$config" ]] || fail "${config#"$root"} is missing: place the init configuration first"
for target in kube-apiserver kube-controller-manager kube-scheduler etcd; do
  # Without its patch the static pod would come up Burstable, not Guaranteed.
  compgen -G "$patches/$target*" >/dev/null || fail "no $target patch in ${patches#"$root"}"
done

log "running kubeadm init"
kubeadm init --config "$config" --upload-certs 2>&1 | redact >&2
log "initialised; admin.conf written"
