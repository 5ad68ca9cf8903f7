#!/usr/bin/env bash
# kubeadm join of this node, as a worker or (CONTROL_PLANE=true) a control-plane node. The join
# configuration (configs/kubeadm.py join_config) and the patches are placed beforehand; a config
# on stdin replaces the file first. That file holds placeholders, never secrets: this script puts
# JOIN_TOKEN, CA_CERT_HASH and CERTIFICATE_KEY from its environment into a 0600 copy under /run
# (tmpfs), hands kubeadm that path, and deletes it on exit. No secret reaches any argv: the
# substitution and the write are bash builtins.
# Idempotent: a node with /etc/kubernetes/kubelet.conf is already a member and is left alone.
# kubeadm's output goes to stderr, redacted; stdout gets one status line.
#
# Environment:
#   JOIN_TOKEN       bootstrap token (secret; required unless already a member)
#   CA_CERT_HASH     sha256:<hex> of the cluster CA's public key (required unless already a member)
#   CERTIFICATE_KEY  key of the uploaded control-plane certificates (secret; control-plane joins)
#   CONTROL_PLANE    true for a control-plane join (default false)
#   KUBEADM_CONFIG   path of the join configuration (default /etc/kubernetes/kubeadm/join.yaml)
#   HAKUBE_ROOT      prefix for every path (tests point it at a scratch root)
set -euo pipefail

script_name="kubeadm-join"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

config="$root${KUBEADM_CONFIG:-/etc/kubernetes/kubeadm/join.yaml}"
control_plane="${CONTROL_PLANE:-false}"
mode=worker
[[ "$control_plane" == true ]] && mode=control-plane

install_stdin_config "$config"

if [[ -f "$root/etc/kubernetes/kubelet.conf" ]]; then
  if [[ "$mode" == control-plane ]] && [[ ! -f "$root/etc/kubernetes/manifests/kube-apiserver.yaml" ]]; then
    fail "this node is a member without a kube-apiserver (a worker, or a half-done join); run node-reset.sh" \
      "before joining it as a control-plane node"
  fi
  log "already a member of the cluster (kubelet.conf present); skipped"
  exit 0
fi

[[ -s "$config" ]] || fail "${config#"$root"} is missing: place the join configuration first"
# The values are checked against their exact shapes, so they cannot break the YAML they go into.
[[ "${JOIN_TOKEN:-}" =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]] || fail "JOIN_TOKEN is missing or not a bootstrap token"
[[ "${CA_CERT_HASH:-}" =~ ^sha256:[a-f0-9]{64}$ ]] || fail "CA_CERT_HASH is missing or not sha256:<64 hex>"

content="$(cat "$config")"
substitute() {
  local placeholder="\${$1}"
  [[ "$content" == *"$placeholder"* ]] || fail "${config#"$root"} has no $placeholder placeholder"
  content="${content//"$placeholder"/"$2"}"
}
substitute JOIN_TOKEN "$JOIN_TOKEN"
substitute CA_CERT_HASH "$CA_CERT_HASH"
if [[ "$mode" == control-plane ]]; then
  [[ "${CERTIFICATE_KEY:-}" =~ ^[a-f0-9]{64}$ ]] || fail "CERTIFICATE_KEY is missing or not 64 hex digits"
  substitute CERTIFICATE_KEY "$CERTIFICATE_KEY"
fi
[[ "$content" != *"\${"* ]] || fail "${config#"$root"} has a placeholder this $mode join does not fill"

run_dir="$root/run/hakube"
mkdir -p "$run_dir"
chmod 0700 "$run_dir"
secret_config="$(mktemp --suffix=.yaml "$run_dir/join.XXXXXX")"
trap 'rm -f "$secret_config"' EXIT
printf '%s\n' "$content" >"$secret_config"

log "joining as a $mode node"
kubeadm join --config "$secret_config" 2>&1 | redact >&2
log "joined as a $mode node"
