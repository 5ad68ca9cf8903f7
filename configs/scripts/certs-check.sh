#!/usr/bin/env bash
# Report this control-plane node's kubeadm certificates and renew them when the first to expire
# does so within RENEW_BEFORE_DAYS: `kubeadm certs renew all`, then the static pods restarted the
# way kubeadm documents (their manifests moved out of the manifests directory, the kubelet given
# its fileCheckFrequency to stop them, moved back), and the local apiserver waited for.
# Prints one JSON line: node, earliest expiry, whether it renewed, and check-expiration's table.
#
# Environment:
#   NODE_NAME, RENEW_BEFORE_DAYS (required)
#   APISERVER_PORT     local kube-apiserver port for the readiness wait (default 6443)
#   STATIC_POD_WAIT    seconds the kubelet needs to notice a manifest change (default 20)
#   READY_TIMEOUT      seconds to wait for the apiserver to be ready again (default 180)
#   HAKUBE_ROOT        prefix for every path (tests point it at a scratch root)
set -euo pipefail

script_name="certs-check"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${NODE_NAME:?NODE_NAME is required}"
: "${RENEW_BEFORE_DAYS:?RENEW_BEFORE_DAYS is required}"
pki="$root/etc/kubernetes/pki"
manifests="$root/etc/kubernetes/manifests"
wait_s="${STATIC_POD_WAIT:-20}"

# The leaf certificates `kubeadm certs renew all` renews (the CAs last ten years and are not renewed).
leaves() {
  local name
  for name in apiserver apiserver-kubelet-client apiserver-etcd-client front-proxy-client \
    etcd/server etcd/peer etcd/healthcheck-client; do
    [[ -f "$pki/$name.crt" ]] && printf '%s\n' "$pki/$name.crt"
  done
  return 0
}

earliest() {
  local cert end first="" first_epoch=""
  while IFS= read -r cert; do
    end="$(openssl x509 -enddate -noout -in "$cert" | cut -d= -f2)"
    epoch="$(date -d "$end" +%s)"
    if [[ -z "$first_epoch" || "$epoch" -lt "$first_epoch" ]]; then first_epoch="$epoch"; first="$end"; fi
  done < <(leaves)
  printf '%s' "$first"
}

due() {
  local cert
  while IFS= read -r cert; do
    openssl x509 -checkend "$((RENEW_BEFORE_DAYS * 86400))" -noout -in "$cert" >/dev/null || return 0
  done < <(leaves)
  return 1
}

restart_static_pods() {
  local parked="$root/etc/kubernetes/manifests.hakube-parked"
  mkdir -p "$parked"
  mv "$manifests"/*.yaml "$parked"/
  sleep "$wait_s"
  mv "$parked"/*.yaml "$manifests"/
  rmdir "$parked"
  local deadline=$((SECONDS + ${READY_TIMEOUT:-180}))
  until curl --silent --insecure --fail --max-time 2 --output /dev/null \
    "https://127.0.0.1:${APISERVER_PORT:-6443}/readyz"; do
    if ((SECONDS > deadline)); then log "the apiserver did not become ready again"; return 1; fi
    sleep 2
  done
}

renewed=false
if due; then
  log "a certificate expires within $RENEW_BEFORE_DAYS days; renewing"
  kubeadm certs renew all >&2
  restart_static_pods
  renewed=true
fi
# One JSON string (no python or jq needed on the node): backslashes, quotes, tabs, newlines escaped.
json_string() {
  local s="$1"
  s="${s//\\/\\\\}"; s="${s//\"/\\\"}"; s="${s//$'\t'/\\t}"; s="${s//$'\n'/\\n}"
  printf '"%s"' "$s"
}
table="$(kubeadm certs check-expiration)"
printf '{"node":%s,"earliestExpiry":%s,"renewed":%s,"renewBeforeDays":%d,"checkExpiration":%s}\n' \
  "$(json_string "$NODE_NAME")" "$(json_string "$(earliest)")" "$renewed" "$RENEW_BEFORE_DAYS" "$(json_string "$table")"
