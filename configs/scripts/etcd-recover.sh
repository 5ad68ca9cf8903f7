#!/usr/bin/env bash
# One step of recovering etcd after a loss of quorum, when one member's data survived.
# configs/etcd_recovery.py plans the steps and ./scripts/restore-etcd --recover-from runs them:
#   STEP=stop-member        (every other member) park the etcd manifest; wait until etcd is down;
#                           move its data to DATA_DIR/.hakube-before-recovery-STAMP
#   STEP=force-new-cluster  (the survivor) copy its data aside, restart etcd once with
#                           --force-new-cluster (a one-member cluster with every key), wait until it
#                           is healthy alone, then restart it without the flag
#   STEP=add                (the survivor) `etcdctl member add MEMBER_NAME --peer-urls=PEER_URL`
#   STEP=rejoin             (the member added) start etcd with an empty data directory, the
#                           flags --initial-cluster=INITIAL_CLUSTER --initial-cluster-state=existing,
#                           and wait until it is healthy and the cluster lists EXPECT_MEMBERS
# Manifests are edited only while parked, so kubelet never runs a half-edited one. Every step can
# be run again.
#
# Environment: DATA_DIR, STAMP, ETCDCTL_ENDPOINTS (the local member; default https://127.0.0.1:2379
# with kubeadm's client certificates), WAIT_S, POLL_S, HAKUBE_ROOT (as etcd-restore.sh).
set -euo pipefail

script_name="etcd-recover"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${STEP:?STEP is required (stop-member, force-new-cluster, add or rejoin)}"
: "${DATA_DIR:?DATA_DIR is required}"
: "${STAMP:?STAMP is required}"
data="$root$DATA_DIR"
aside="$data/.hakube-before-recovery-$STAMP"

# shellcheck source-path=SCRIPTDIR source=lib-etcd.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib-etcd.sh"
etcd_client_defaults

require() {
  local name
  for name in "$@"; do
    [[ -n "${!name:-}" ]] || fail "$name is required for STEP=$STEP"
  done
}

# Stop the kubelet-run etcd here: park its manifest and wait for the port to close.
stop_etcd() {
  [[ -n "$(etcd_manifest)" ]] || fail "no etcd manifest in $(manifests_dir) or $(parked_dir): kubelet does not run etcd here"
  park_static_pods etcd
  wait_until "etcd at $ETCDCTL_ENDPOINTS to stop" local_member_down
}

start_etcd_and_wait() {
  local names="$1"
  unpark_static_pods etcd
  expected() { local_member_healthy && [[ "$(member_names)" == "$names" ]]; }
  wait_until "etcd at $ETCDCTL_ENDPOINTS to be healthy with members $names" expected
}

move_data_aside() {
  if [[ -d "$data/member" ]]; then
    if [[ -d "$aside/member" ]]; then
      rm -rf "$data/member" # a rerun: the member's original data is kept already
    else
      mkdir -p "$aside"
      mv "$data/member" "$aside/member"
      log "moved the old data to ${aside#"$root"}"
    fi
  fi
}

check_peer_url() {
  local advertised
  advertised="$(manifest_flag "$(parked_etcd_manifest)" initial-advertise-peer-urls)"
  [[ -z "${PEER_URL:-}" || -z "$advertised" || "$advertised" == "$PEER_URL" ]] ||
    fail "this node's etcd manifest advertises $advertised, but the plan adds it at $PEER_URL"
}

# etcd refuses a member add for a few seconds after a member started ("unhealthy cluster"): retried.
add_member() {
  local out
  if out="$(etcdctl member add "$MEMBER_NAME" --peer-urls="$PEER_URL" 2>&1)"; then
    return 0
  fi
  case "$out" in
    *"unhealthy cluster"*)
      log "member add refused (unhealthy cluster: a member started recently); trying again"
      return 1
      ;;
    *) fail "etcdctl member add $MEMBER_NAME failed: $out" ;;
  esac
}

case "$STEP" in
  stop-member)
    stop_etcd
    move_data_aside
    log "etcd stopped; ready to rejoin with an empty data directory"
    ;;
  force-new-cluster)
    require MEMBER_NAME
    stop_etcd
    [[ -d "$data/member" ]] || fail "no data in ${data#"$root"}: this node cannot be the survivor"
    # --force-new-cluster rewrites the membership in place: keep the survivor's data as it was.
    if [[ ! -d "$aside/member" ]]; then
      mkdir -p "$aside"
      cp -a "$data/member" "$aside/member"
      log "copied the survivor's data to ${aside#"$root"}"
    fi
    set_manifest_flag "$(parked_etcd_manifest)" force-new-cluster
    start_etcd_and_wait "$MEMBER_NAME"
    log "$MEMBER_NAME runs as a one-member cluster"
    # Once only: every later start with the flag would drop the members added back.
    stop_etcd
    drop_manifest_flag "$(parked_etcd_manifest)" force-new-cluster
    start_etcd_and_wait "$MEMBER_NAME"
    log "$MEMBER_NAME restarted without --force-new-cluster"
    ;;
  add)
    require MEMBER_NAME PEER_URL
    # `member list` lines: "ID, STATUS, NAME, PEER URLS, CLIENT URLS, IS LEARNER"; an added,
    # not yet started member has an empty name.
    listed="$(etcdctl member list)" || fail "cannot list the members at $ETCDCTL_ENDPOINTS"
    if awk -F', ' -v url="$PEER_URL" '$4 == url { found = 1 } END { exit !found }' <<<"$listed"; then
      log "$PEER_URL is a member already"
    else
      wait_until "etcd to accept $MEMBER_NAME as a member" add_member
      log "added $MEMBER_NAME at $PEER_URL"
    fi
    ;;
  rejoin)
    require MEMBER_NAME INITIAL_CLUSTER EXPECT_MEMBERS
    stop_etcd
    move_data_aside
    check_peer_url
    set_manifest_flag "$(parked_etcd_manifest)" initial-cluster "$INITIAL_CLUSTER"
    set_manifest_flag "$(parked_etcd_manifest)" initial-cluster-state existing
    start_etcd_and_wait "$EXPECT_MEMBERS"
    log "$MEMBER_NAME rejoined; members $EXPECT_MEMBERS"
    ;;
  *) fail "unknown STEP ${STEP@Q}" ;;
esac
