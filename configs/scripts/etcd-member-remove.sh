#!/usr/bin/env bash
# Remove the etcd member named MEMBER_NAME (a control-plane node being deleted), talking to a
# surviving member (on the first control-plane node: its local etcd). The member is found by name,
# and its absence is verified by name afterwards. A member that is not there is "already removed"
# (exit 0, nothing changed). etcd refuses removals while it counts a recently started member as
# not yet active ("unhealthy cluster"): that answer is retried, ATTEMPTS times INTERVAL apart.
# Refuses to remove the last member.
#
# Environment (etcdctl reads the ETCDCTL_* variables itself, so nothing lands in argv):
#   MEMBER_NAME        etcd member name = the node name (required)
#   ETCDCTL_ENDPOINTS  default https://127.0.0.1:2379 (kubeadm's local etcd)
#   ETCDCTL_CACERT, ETCDCTL_CERT, ETCDCTL_KEY  for https endpoints; default kubeadm's etcd CA and
#                      the apiserver's etcd client certificate under /etc/kubernetes/pki
#   ATTEMPTS, INTERVAL retries of a refused removal (default 10, 3 s)
#   HAKUBE_ROOT        prefix for every path (tests point it at a scratch root)
set -euo pipefail

script_name="etcd-member-remove"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${MEMBER_NAME:?MEMBER_NAME is required}"
attempts="${ATTEMPTS:-10}"
interval="${INTERVAL:-3}"
export ETCDCTL_API=3
export ETCDCTL_ENDPOINTS="${ETCDCTL_ENDPOINTS:-https://127.0.0.1:2379}"
export ETCDCTL_DIAL_TIMEOUT="${ETCDCTL_DIAL_TIMEOUT:-5s}"
export ETCDCTL_COMMAND_TIMEOUT="${ETCDCTL_COMMAND_TIMEOUT:-15s}"
if [[ "$ETCDCTL_ENDPOINTS" == https://* ]]; then
  export ETCDCTL_CACERT="${ETCDCTL_CACERT:-$root/etc/kubernetes/pki/etcd/ca.crt}"
  export ETCDCTL_CERT="${ETCDCTL_CERT:-$root/etc/kubernetes/pki/apiserver-etcd-client.crt}"
  export ETCDCTL_KEY="${ETCDCTL_KEY:-$root/etc/kubernetes/pki/apiserver-etcd-client.key}"
fi

# `member list` lines: "ID, STATUS, NAME, PEER URLS, CLIENT URLS, IS LEARNER".
members="$(etcdctl member list)" || fail "cannot list the members at $ETCDCTL_ENDPOINTS"
ids="$(awk -F', ' -v name="$MEMBER_NAME" '$3 == name { print $1 }' <<<"$members")"
if [[ -z "$ids" ]]; then
  log "no member named $MEMBER_NAME; already removed"
  exit 0
fi
[[ "$(wc -l <<<"$ids")" -eq 1 ]] || fail "several members are named $MEMBER_NAME: $(tr '\n' ' ' <<<"$ids")"
[[ "$(wc -l <<<"$members")" -gt 1 ]] || fail "$MEMBER_NAME is the only member; refusing to remove it"
id="$ids"

for ((try = 1; ; try++)); do
  if out="$(etcdctl member remove "$id" 2>&1)"; then
    break
  fi
  case "$out" in
    *"member not found"*) break ;; # removed meanwhile
    *"unhealthy cluster"*)
      ((try < attempts)) || fail "etcd still refuses to remove $MEMBER_NAME after $attempts attempts: $out"
      log "refused ($out); attempt $try of $attempts"
      sleep "$interval"
      ;;
    *) fail "removing $MEMBER_NAME ($id) failed: $out" ;;
  esac
done

# Verified by name: the list must no longer show it.
left="$(etcdctl member list)" || fail "cannot list the members after the removal"
if awk -F', ' -v name="$MEMBER_NAME" '$3 == name { found = 1 } END { exit !found }' <<<"$left"; then
  fail "$MEMBER_NAME is still listed after its removal"
fi
log "removed member $MEMBER_NAME ($id); $(wc -l <<<"$left") members left"
