#!/usr/bin/env bash
# Take NODE_NAME out of the cluster, from a node with admin access (the first control-plane
# node): cordon, drain (bounded), delete the Node object. A node that is not in the cluster is
# "already removed" and nothing is called that changes anything. A drain that does not finish in
# time (a PodDisruptionBudget that never allows it) fails the step and leaves the node cordoned.
# Pods on a node that is down never finish terminating: after DELETE_WAIT seconds drain stops
# waiting for them, as they go with the node anyway.
#
# Environment:
#   NODE_NAME      node to remove (required)
#   DRAIN_TIMEOUT  seconds the drain may take (default 300)
#   DELETE_WAIT    seconds to wait for one evicted pod before moving on (default 60)
#   HAKUBE_ROOT    prefix for every path (tests point it at a scratch root)
set -euo pipefail

script_name="node-remove"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${NODE_NAME:?NODE_NAME is required}"
drain_timeout="${DRAIN_TIMEOUT:-300}"
delete_wait="${DELETE_WAIT:-60}"
export KUBECONFIG="$admin_kubeconfig"

# An unreachable API server is an error (exit 1), not "absent": --ignore-not-found only hides NotFound.
found="$(kubectl get node "$NODE_NAME" --ignore-not-found -o name --request-timeout=20s)"
if [[ -z "$found" ]]; then
  log "$NODE_NAME is not in the cluster; already removed"
  exit 0
fi

kubectl cordon "$NODE_NAME" --request-timeout=20s >&2
kubectl drain "$NODE_NAME" --ignore-daemonsets --delete-emptydir-data --force \
  --timeout="${drain_timeout}s" --skip-wait-for-delete-timeout="$delete_wait" --request-timeout=20s >&2
kubectl delete node "$NODE_NAME" --ignore-not-found --request-timeout=20s >&2
log "$NODE_NAME drained and deleted"
