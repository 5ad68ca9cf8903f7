#!/usr/bin/env bash
# Smoke test: the nginx NodePort answers HTTP 200 through every node, which proves that kube-proxy
# and the CNI route from each node to the pods wherever they run. Runs on a control-plane node.
# Changes nothing, so re-running is always safe.
#
# Environment: NODE_ADDRESSES (space-separated `name=address` entries, or bare addresses), NODE_PORT;
# optional DEPLOYMENT with NAMESPACE and REPLICAS (first wait until the Deployment reports REPLICAS
# ready pods, read with this node's admin kubeconfig); ATTEMPTS (rounds, default 30), INTERVAL
# (seconds between rounds, default 2), CURL_TIMEOUT (seconds per request, default 5); HAKUBE_ROOT.
# Prints one JSON summary line on stdout; on failure, one line on stderr per node that never answered.
set -euo pipefail

: "${NODE_ADDRESSES:?}" "${NODE_PORT:?}"
attempts="${ATTEMPTS:-30}"
interval="${INTERVAL:-2}"
curl_timeout="${CURL_TIMEOUT:-5}"
kubeconfig="${HAKUBE_ROOT:-}/etc/kubernetes/admin.conf"

die() {
  echo "smoke-check: $*" >&2
  exit 1
}

[[ "$NODE_PORT" =~ ^[0-9]{1,5}$ ]] || die "NODE_PORT=$NODE_PORT is not a port number"
[[ "$attempts" =~ ^[1-9][0-9]{0,3}$ ]] || die "ATTEMPTS=$attempts is not a count from 1 to 9999"

names=()
addresses=()
read -ra entries <<<"$NODE_ADDRESSES"
for entry in "${entries[@]}"; do
  name="${entry%%=*}"
  address="${entry#*=}"
  # Only plain names and addresses: they end up in the JSON summary unescaped.
  [[ "$name" =~ ^[0-9A-Za-z.-]+$ && "$address" =~ ^[0-9A-Za-z.-]+$ ]] || die "bad node entry '$entry'"
  names+=("$name")
  addresses+=("$address")
done
((${#addresses[@]} > 0)) || die "NODE_ADDRESSES names no node"

summary_deployment=""
if [[ -n "${DEPLOYMENT:-}" ]]; then
  : "${NAMESPACE:?}" "${REPLICAS:?}"
  ready=0
  for ((round = 1; round <= attempts; round++)); do
    ready="$(kubectl --kubeconfig "$kubeconfig" -n "$NAMESPACE" get deployment "$DEPLOYMENT" \
      -o 'jsonpath={.status.readyReplicas}' 2>/dev/null || true)"
    [[ "$ready" =~ ^[0-9]+$ ]] || ready=0
    if ((ready >= REPLICAS)); then
      break
    fi
    if ((round < attempts)); then
      sleep "$interval"
    fi
  done
  ((ready >= REPLICAS)) \
    || die "deployment $NAMESPACE/$DEPLOYMENT has $ready of $REPLICAS replicas ready after $attempts attempts"
  summary_deployment="\"deployment\":\"$NAMESPACE/$DEPLOYMENT\",\"readyReplicas\":$ready,"
fi

# Rounds over the nodes still failing, so a slow node does not hold up the others' checks.
statuses=()
tries=()
pending=("${!addresses[@]}")
for ((round = 1; round <= attempts && ${#pending[@]} > 0; round++)); do
  failing=()
  for i in "${pending[@]}"; do
    code="$(curl --silent --output /dev/null --write-out '%{http_code}' --connect-timeout "$curl_timeout" \
      --max-time "$curl_timeout" "http://${addresses[i]}:$NODE_PORT/" 2>/dev/null || true)"
    statuses[i]="${code:-000}"
    tries[i]="$round"
    if [[ "$code" != 200 ]]; then
      failing+=("$i")
    fi
  done
  pending=("${failing[@]}")
  if ((${#pending[@]} > 0 && round < attempts)); then
    sleep "$interval"
  fi
done

if ((${#pending[@]} > 0)); then
  for i in "${pending[@]}"; do
    echo "smoke-check: node ${names[i]} (${addresses[i]}): http://${addresses[i]}:$NODE_PORT/ gave no" \
      "HTTP 200 in $attempts attempts (last status ${statuses[i]})" >&2
  done
  exit 1
fi

nodes=()
for i in "${!addresses[@]}"; do
  nodes+=("{\"name\":\"${names[i]}\",\"address\":\"${addresses[i]}\",\"status\":${statuses[i]},\"attempts\":${tries[i]}}")
done
joined="$(IFS=,; echo "${nodes[*]}")"
echo "{\"ok\":true,\"nodePort\":$NODE_PORT,$summary_deployment\"nodes\":[$joined]}"
