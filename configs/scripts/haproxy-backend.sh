#!/usr/bin/env bash
# Take one kube-apiserver out of this LB node's HAProxy before its upgrade, or put it back after,
# through HAProxy's runtime API (the admin socket in haproxy.cfg), without a reload.
#   ACTION=disable  an apiserver that already answers /version with vKUBERNETES_VERSION is left
#                   alone (nothing to upgrade: a first deployment). Otherwise: state drain (no new
#                   connections), wait up to DRAIN_WAIT seconds for its sessions to end, then
#                   state maint (no traffic, no health checks while it restarts). Should anything
#                   fail after the drain began, the server is set back to ready before exiting.
#   ACTION=enable   state ready, only when the server is in drain or maint (else nothing).
#
# Environment:
#   ACTION, SERVER (the control-plane node's name), KUBERNETES_VERSION (required)
#   VERSION_URL  the apiserver's https://address:port/version (optional; without it, no skip)
#   BACKEND      HAProxy backend (default kube-apiserver)
#   DRAIN_WAIT   seconds to let sessions end before maint (default 10)
#   HAKUBE_ROOT  prefix for every path; the socket is $HAKUBE_ROOT/run/haproxy/admin.sock
set -euo pipefail

script_name="haproxy-backend"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${ACTION:?ACTION is required (disable or enable)}"
: "${SERVER:?SERVER is required}"
: "${KUBERNETES_VERSION:?KUBERNETES_VERSION is required (x.y.z)}"
backend="${BACKEND:-kube-apiserver}"
socket="$root/run/haproxy/admin.sock"
drain_wait="${DRAIN_WAIT:-10}"

api() { printf '%s\n' "$1" | socat -t 2 stdio "UNIX-CONNECT:$socket"; }
# `show stat` CSV: field 2 is the server name, 5 its current sessions, 18 its status (UP, DOWN, MAINT, DRAIN...).
stat_field() { api "show stat" | awk -F, -v b="$backend" -v s="$SERVER" -v f="$1" '$1 == b && $2 == s {print $f; exit}'; }
report() { printf '{"server":"%s","backend":"%s","status":"%s","changed":%s}\n' "$SERVER" "$backend" "$(stat_field 18)" "$1"; }
set_state() {
  local answer
  answer="$(api "set server $backend/$SERVER state $1")"
  if [[ -n "$answer" ]]; then  # HAProxy answers nothing on success
    log "HAProxy refused 'set server $backend/$SERVER state $1': $answer"
    return 1
  fi
}

[[ -S "$socket" ]] || fail "no HAProxy admin socket at $socket"
[[ -n "$(stat_field 18)" ]] || fail "HAProxy has no server $backend/$SERVER"

case "$ACTION" in
  disable)
    if [[ -n "${VERSION_URL:-}" ]] \
      && curl --silent --insecure --max-time 3 "$VERSION_URL" | grep -q "\"gitVersion\": *\"v$KUBERNETES_VERSION\""; then
      log "$SERVER already serves v$KUBERNETES_VERSION; left in service"
      report false
      exit 0
    fi
    trap 'log "failed; putting $SERVER back in service"; set_state ready || true' ERR
    set_state drain
    for ((i = 0; i < drain_wait * 10; i++)); do
      [[ "$(stat_field 5)" == 0 ]] && break
      sleep 0.1
    done
    set_state maint
    trap - ERR
    log "$SERVER out of service"
    report true
    ;;
  enable)
    case "$(stat_field 18)" in
      MAINT* | DRAIN*) set_state ready; log "$SERVER back in service"; report true ;;
      *) log "$SERVER is in service already"; report false ;;
    esac
    ;;
  *) log "unknown ACTION $ACTION"; exit 2 ;;
esac
