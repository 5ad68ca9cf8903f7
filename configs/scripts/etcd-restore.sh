#!/usr/bin/env bash
# One step of restoring this node's etcd member from a snapshot. configs/etcd_recovery.py plans
# the steps and ./scripts/restore-etcd runs them over SSH, each step on every control-plane node
# before the next step starts:
#   STEP=stop     park the STATIC_PODS' manifests (kubelet stops those pods); wait until etcd is down
#   STEP=receive  read the snapshot from stdin, check its SHA-256 (SNAPSHOT_SHA256) and its status
#   STEP=restore  restore it into a new data directory as member MEMBER_NAME at PEER_URL of the
#                 cluster INITIAL_CLUSTER with CLUSTER_TOKEN (the NEW member list: replacement nodes
#                 with new addresses get their own peer URLs); the old member directory is moved to
#                 DATA_DIR/.hakube-before-restore-STAMP, the new one put in its place
#   STEP=start    put the STATIC_PODS' manifests back (kubelet starts them)
#   STEP=check    wait until the local member is healthy and lists exactly EXPECT_MEMBERS
# Each step can be run again: a stopped pod stays stopped, a rerun restore replaces its own result.
#
# Environment:
#   DATA_DIR           etcd's data directory (kubeadm: /var/lib/etcd); STAMP: UTC time of this restore
#   ETCDCTL_ENDPOINTS  the local member (default https://127.0.0.1:2379, kubeadm's client certificates)
#   STATIC_PODS        for stop/start: manifest names in order, e.g. "kube-apiserver ... etcd"
#   BUMP_REVISION      revisions to skip ahead (etcdutl --bump-revision with --mark-compacted), when
#                      etcdutl offers it; etcd 3.4's etcdctl cannot, and says so
#   WAIT_S, POLL_S     how long and how often to wait for etcd to stop or become healthy
#   HAKUBE_ROOT        prefix for every path (tests point it at a scratch root)
set -euo pipefail

script_name="etcd-restore"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${STEP:?STEP is required (stop, receive, restore, start or check)}"
: "${DATA_DIR:?DATA_DIR is required}"
data="$root$DATA_DIR"
incoming="$root/var/lib/hakube/etcd-restore"
snapshot="$incoming/snapshot.db"

# shellcheck source-path=SCRIPTDIR source=lib-etcd.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib-etcd.sh"
etcd_client_defaults

stop_pods() {
  : "${STATIC_PODS:?STATIC_PODS is required}"
  # shellcheck disable=SC2086 # a list of names
  park_static_pods $STATIC_PODS
  [[ -n "$(etcd_manifest)" ]] || local_member_down ||
    fail "etcd answers at $ETCDCTL_ENDPOINTS but has no static pod manifest here to stop it by"
  wait_until "etcd at $ETCDCTL_ENDPOINTS to stop" local_member_down
  log "etcd is stopped"
}

receive() {
  : "${SNAPSHOT_SHA256:?SNAPSHOT_SHA256 is required}"
  [[ ! -t 0 ]] || fail "the snapshot is read from stdin"
  mkdir -p "$incoming"
  chmod 0700 "$incoming"
  (umask 077 && cat >"$snapshot.partial")
  local sum tool
  sum="$(sha256sum "$snapshot.partial" | cut -d' ' -f1)"
  [[ "$sum" == "$SNAPSHOT_SHA256" ]] || fail "the snapshot arrived with SHA-256 $sum, not $SNAPSHOT_SHA256"
  tool="$(etcd_file_tool)"
  [[ "$tool" == etcdutl ]] || log "etcdutl not found (etcd 3.4): checking with etcdctl snapshot status"
  "$tool" snapshot status "$snapshot.partial" -w json >/dev/null 2>&1 || fail "the snapshot fails $tool snapshot status"
  mv -f "$snapshot.partial" "$snapshot"
  log "received the snapshot ($(stat -c %s "$snapshot") bytes, SHA-256 $sum)"
}

restore() {
  local name
  for name in MEMBER_NAME PEER_URL INITIAL_CLUSTER CLUSTER_TOKEN STAMP; do
    [[ -n "${!name:-}" ]] || fail "$name is required"
  done
  [[ -f "$snapshot" ]] || fail "no snapshot received (run STEP=receive first)"
  local_member_down || fail "etcd at $ETCDCTL_ENDPOINTS still runs (run STEP=stop first)"
  local manifest advertised
  manifest="$(etcd_manifest)"
  if [[ -n "$manifest" ]]; then
    advertised="$(manifest_flag "$manifest" initial-advertise-peer-urls)"
    # A replacement node must have been set up for its own address: its etcd advertises PEER_URL.
    [[ -z "$advertised" || "$advertised" == "$PEER_URL" ]] ||
      fail "this node's etcd manifest advertises $advertised, but the stack makes it $MEMBER_NAME at $PEER_URL"
  fi

  local staging="$data/.hakube-restore-$STAMP" before="$data/.hakube-before-restore-$STAMP" tool
  local flags=(--name "$MEMBER_NAME" --initial-cluster "$INITIAL_CLUSTER" --initial-cluster-token "$CLUSTER_TOKEN"
    --initial-advertise-peer-urls "$PEER_URL" --data-dir "$staging")
  tool="$(etcd_file_tool)"
  if [[ -n "${BUMP_REVISION:-}" ]]; then
    if [[ "$tool" == etcdutl ]] && etcdutl snapshot restore --help 2>&1 | grep -q -- --bump-revision; then
      flags+=(--bump-revision "$BUMP_REVISION" --mark-compacted)
    else
      log "$tool cannot bump the revision (etcd 3.4): clients may see revisions go back; restart them"
    fi
  fi
  mkdir -p "$data"
  chmod 0700 "$data"
  rm -rf "$staging"
  "$tool" snapshot restore "$snapshot" "${flags[@]}" >/dev/null 2>"$incoming/restore.log" ||
    fail "$tool snapshot restore failed: $(tail -n 5 "$incoming/restore.log")"
  # Renames within the data directory: no copy, even where it is its own disk (VMs).
  if [[ -d "$data/member" ]]; then
    if [[ -d "$before/member" ]]; then
      rm -rf "$data/member" # a rerun: this is an earlier run's restore; the original is kept already
    else
      mkdir -p "$before"
      mv "$data/member" "$before/member"
      log "the old data is kept in ${before#"$root"}"
    fi
  fi
  mv "$staging/member" "$data/member"
  rmdir "$staging"
  log "restored member $MEMBER_NAME at $PEER_URL of $INITIAL_CLUSTER"
}

check() {
  : "${EXPECT_MEMBERS:?EXPECT_MEMBERS is required}"
  expected() { local_member_healthy && [[ "$(member_names)" == "$EXPECT_MEMBERS" ]]; }
  wait_until "etcd at $ETCDCTL_ENDPOINTS to be healthy with members $EXPECT_MEMBERS" expected
  log "healthy; members $EXPECT_MEMBERS"
}

case "$STEP" in
  stop) stop_pods ;;
  receive) receive ;;
  restore) restore ;;
  start)
    : "${STATIC_PODS:?STATIC_PODS is required}"
    # shellcheck disable=SC2086 # a list of names
    unpark_static_pods $STATIC_PODS
    ;;
  check) check ;;
  *) fail "unknown STEP ${STEP@Q}" ;;
esac
