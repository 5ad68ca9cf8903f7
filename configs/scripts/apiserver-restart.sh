#!/usr/bin/env bash
# Restart this control-plane node's kube-apiserver when the files it reads at start (its encryption
# configuration and audit policy, configs/apiserver.py) changed since it last started, and wait until
# it is ready again. Run right after file-set.sh placed them, one node at a time, so the API stays
# served by the others. The restart is kubelet's own: the static pod's manifest leaves the manifests
# directory (kubelet stops the pod), and comes back once the apiserver no longer answers.
# Before kubeadm has written the manifest (a node not yet initialised or joined) nothing runs: the
# apiserver kubeadm starts reads the files as they are. Either way the files' digest is recorded in
# STARTED_WITH, so a later run restarts only for a change; a failed restart is retried by the next run.
#
# Environment:
# A manifest whose command lacks a flag of REQUIRED_FLAGS (a cluster kubeadm initialised before hakube
# set them) fails the step: the files alone would change nothing, and Secrets would stay plain text.
#
#   CONFIG_FILES    absolute paths of the files (required)
#   REQUIRED_FLAGS  name=value flags the apiserver must run with (kubeadm ClusterConfiguration extraArgs)
#   STARTED_WITH    absolute path of the record (required)
#   APISERVER_PORT  the local kube-apiserver's port (default 6443)
#   STOP_TIMEOUT    seconds to wait for kubelet to stop the apiserver (default 90: its file check
#                   runs every 20 s, the apiserver's shutdown delay adds 5 s)
#   READY_TIMEOUT   seconds to wait for it to be ready again (default 180)
#   POLL_S          seconds between checks (default 1)
#   HAKUBE_ROOT     prefix for every path (tests point it at a scratch root)
set -euo pipefail

script_name="apiserver-restart"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${CONFIG_FILES:?CONFIG_FILES is required}"
: "${STARTED_WITH:?STARTED_WITH is required}"
record="$root$STARTED_WITH"
manifest="$root/etc/kubernetes/manifests/kube-apiserver.yaml"
parked="$root/etc/kubernetes/hakube-parked-manifests"
url="https://127.0.0.1:${APISERVER_PORT:-6443}"

digest() {
  local file
  # shellcheck disable=SC2086  # a list of paths
  for file in $CONFIG_FILES; do
    [[ "$file" == /* ]] || fail "${file@Q} is not an absolute path"
    [[ -f "$root$file" ]] || fail "${file} is missing"
    printf '%s %s\n' "$(sha256sum <"$root$file" | cut -d' ' -f1)" "$file"
  done | sha256sum | cut -d' ' -f1
}

answers() { curl --silent --insecure --fail --max-time 2 --output /dev/null "$url/$1"; }

# Wait (bounded) until "$@" succeeds; $1 of the message names what was awaited.
wait_for() {
  local what="$1" limit="$2" deadline
  shift 2
  deadline=$((SECONDS + limit))
  until "$@"; do
    ((SECONDS < deadline)) || fail "timed out after ${limit}s waiting until $what"
    sleep "${POLL_S:-1}"
  done
}

stopped() { ! answers livez; }

now="$(digest)"
# A manifest left parked by an interrupted run goes back first.
if [[ -f "$parked/kube-apiserver.yaml" && ! -f "$manifest" ]]; then
  mv -f "$parked/kube-apiserver.yaml" "$manifest"
  log "put back the kube-apiserver manifest an earlier run left parked"
fi
missing=()
if [[ -f "$manifest" ]]; then
  for flag in ${REQUIRED_FLAGS:-}; do
    grep -qxF -- "    - --$flag" "$manifest" || missing+=("--$flag")
  done
fi
if ((${#missing[@]} > 0)); then
  fail "kube-apiserver's manifest lacks ${missing[*]}: this cluster's ClusterConfiguration predates them." \
    "Add hakube's apiServer.extraArgs and extraVolumes (the dry run's init.yaml) to the kubeadm-config" \
    "ConfigMap and run 'kubeadm upgrade node' on each control-plane node, one at a time (README)"
fi
if [[ -f "$record" && "$(cat "$record")" == "$now" ]]; then
  log "kube-apiserver already runs with these files; nothing to restart"
  exit 0
fi
if [[ -f "$manifest" ]]; then
  log "the apiserver's files changed: restarting kube-apiserver"
  mkdir -p "$parked"
  chmod 0700 "$parked"
  mv -f "$manifest" "$parked/kube-apiserver.yaml"
  wait_for "kubelet stopped kube-apiserver" "${STOP_TIMEOUT:-90}" stopped
  mv -f "$parked/kube-apiserver.yaml" "$manifest"
  wait_for "kube-apiserver is ready again" "${READY_TIMEOUT:-180}" answers readyz
  log "kube-apiserver restarted and ready"
else
  log "no kube-apiserver manifest yet: kubeadm starts it with these files"
fi
printf '%s\n' "$now" | atomic_write "$record" 0600
