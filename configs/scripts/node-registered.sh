#!/usr/bin/env bash
# Wait (bounded) until NODE_NAME is registered with the API server, using the admin kubeconfig on
# the first control-plane node. Succeeds at once when it already is.
#
# Environment: NODE_NAME (required), ATTEMPTS (default 60), INTERVAL seconds (default 5), HAKUBE_ROOT.
set -euo pipefail

script_name="node-registered"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${NODE_NAME:?NODE_NAME is required}"
attempts="${ATTEMPTS:-60}"
interval="${INTERVAL:-5}"
export KUBECONFIG="$admin_kubeconfig"

for ((try = 1; try <= attempts; try++)); do
  if kubectl get node "$NODE_NAME" --request-timeout=10s -o name >/dev/null 2>&1; then
    log "$NODE_NAME is a member of the cluster"
    exit 0
  fi
  ((try < attempts)) && sleep "$interval"
done
fail "$NODE_NAME did not register after $attempts attempts"
