#!/usr/bin/env bash
# Cordon and drain a node before its upgrade, or uncordon it after; run where the admin
# kubeconfig is (the first control-plane node). Prints the node's kubelet version.
#   ACTION=drain     a node whose kubelet already runs vKUBERNETES_VERSION is left alone; else
#                    it is marked (annotation hakube.io/upgrade-drained), cordoned and drained
#                    (bounded by DRAIN_TIMEOUT: a PodDisruptionBudget that never allows it fails
#                    the step and leaves the node cordoned).
#   ACTION=uncordon  uncordons only a node hakube drained (the annotation), so a node an operator
#                    cordoned by hand stays cordoned.
#
# Environment:
#   ACTION, NODE_NAME, KUBERNETES_VERSION (required)
#   DRAIN_TIMEOUT  seconds the drain may take (default 300)
#   DELETE_WAIT    seconds to wait for one evicted pod (default 60)
#   HAKUBE_ROOT    prefix for every path (tests point it at a scratch root)
set -euo pipefail

script_name="node-drain"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${ACTION:?ACTION is required (drain or uncordon)}"
: "${NODE_NAME:?NODE_NAME is required}"
: "${KUBERNETES_VERSION:?KUBERNETES_VERSION is required (x.y.z)}"
export KUBECONFIG="$admin_kubeconfig"
mark="hakube.io/upgrade-drained"

version() { kubectl get node "$NODE_NAME" -o 'jsonpath={.status.nodeInfo.kubeletVersion}' --request-timeout=20s; }
report() { printf '{"node":"%s","kubelet":"%s","action":"%s","changed":%s}\n' "$NODE_NAME" "$(version)" "$ACTION" "$1"; }

case "$ACTION" in
  drain)
    if [[ "$(version)" == "v$KUBERNETES_VERSION" ]]; then
      log "$NODE_NAME already runs v$KUBERNETES_VERSION; not drained"
      report false
      exit 0
    fi
    kubectl annotate node "$NODE_NAME" "$mark=v$KUBERNETES_VERSION" --overwrite --request-timeout=20s >&2
    kubectl cordon "$NODE_NAME" --request-timeout=20s >&2
    kubectl drain "$NODE_NAME" --ignore-daemonsets --delete-emptydir-data --force \
      --timeout="${DRAIN_TIMEOUT:-300}s" --skip-wait-for-delete-timeout="${DELETE_WAIT:-60}" --request-timeout=20s >&2
    log "$NODE_NAME drained"
    report true
    ;;
  uncordon)
    marked="$(kubectl get node "$NODE_NAME" -o "jsonpath={.metadata.annotations.hakube\\.io/upgrade-drained}" \
      --request-timeout=20s)"
    if [[ -z "$marked" ]]; then
      log "$NODE_NAME was not drained by hakube; left as it is"
      report false
      exit 0
    fi
    kubectl uncordon "$NODE_NAME" --request-timeout=20s >&2
    kubectl annotate node "$NODE_NAME" "$mark-" --request-timeout=20s >&2
    log "$NODE_NAME uncordoned"
    report true
    ;;
  *) log "unknown ACTION $ACTION"; exit 2 ;;
esac
