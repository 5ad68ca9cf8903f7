#!/usr/bin/env bash
# Wait (bounded) until NODE_NAME is registered with the API server, using the admin kubeconfig on
# the first control-plane node. Succeeds at once when it already is.
#
# Environment: NODE_NAME (required), ATTEMPTS (default 60), INTERVAL seconds (default 5), HAKUBE_ROOT.
set -euo pipefail

: "${NODE_NAME:?NODE_NAME is required}"
attempts="${ATTEMPTS:-60}"
interval="${INTERVAL:-5}"
export KUBECONFIG="${HAKUBE_ROOT:-}/etc/kubernetes/admin.conf"

for ((try = 1; try <= attempts; try++)); do
  if kubectl get node "$NODE_NAME" --request-timeout=10s -o name >/dev/null 2>&1; then
    echo "node-registered: $NODE_NAME is a member of the cluster"
    exit 0
  fi
  ((try < attempts)) && sleep "$interval"
done
echo "node-registered: $NODE_NAME did not register after $attempts attempts" >&2
exit 1
