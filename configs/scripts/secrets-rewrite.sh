#!/usr/bin/env bash
# Rewrite every Secret (RESOURCES) through the API so kube-apiserver stores each with its current
# write provider, WRITE_KEY: the second step of a key rotation (topology/encryption.py), run on the
# first control-plane node once every apiserver has restarted with the new key first. This is
# Kubernetes' documented way (`kubectl get secrets -A -o json | kubectl replace -f -`); an object
# changed between the get and the replace conflicts, so a failed pass is retried (bounded).
# Prints nothing on stdout.
#
# Environment:
#   WRITE_KEY   the provider the Secrets are rewritten with (for the log; the step's trigger)
#   RESOURCES   the encrypted resources (default secrets)
#   ATTEMPTS    passes before giving up (default 5), INTERVAL seconds between them (default 5)
#   HAKUBE_ROOT prefix for every path (tests point it at a scratch root)
set -euo pipefail

script_name="secrets-rewrite"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${WRITE_KEY:?WRITE_KEY is required}"
attempts="${ATTEMPTS:-5}"
interval="${INTERVAL:-5}"
export KUBECONFIG="$admin_kubeconfig"

for resource in ${RESOURCES:-secrets}; do
  [[ "$resource" =~ ^[a-z][a-z0-9.-]*$ ]] || fail "bad resource name ${resource@Q}"
  for ((try = 1; try <= attempts; try++)); do
    # The objects only pass through this pipe: their values are never printed.
    if kubectl get "$resource" --all-namespaces -o json --request-timeout=60s |
      kubectl replace -f - --request-timeout=120s >/dev/null; then
      count="$(kubectl get "$resource" --all-namespaces --no-headers --request-timeout=60s | wc -l)"
      log "rewrote all $count $resource with $WRITE_KEY"
      continue 2
    fi
    ((try < attempts)) || fail "could not rewrite every $resource after $attempts passes"
    log "pass $try of $attempts left some $resource unwritten (changed meanwhile); again in ${interval}s"
    sleep "$interval"
  done
done
