#!/usr/bin/env bash
# Smoke test: the nginx NodePort answers HTTP 200 through every node, which proves that kube-proxy
# and the CNI route from each node to the pods wherever they run; with a Gateway, the same nginx also
# answers through the Gateway and its HTTPRoute. Runs on a control-plane node. Changes nothing, so
# re-running is always safe.
#
# Environment: NODE_ADDRESSES (space-separated `name=address` entries, or bare addresses); NODE_PORT
# (probe it through every node); GATEWAY (namespace/name) with GATEWAY_PORT (its listener's port):
# probe the Gateway at the address in its status (a LoadBalancer) or, with GATEWAY_SERVICE_NAMESPACE
# and GATEWAY_SERVICE_SELECTOR (labels of the Gateway's Service), through every node at that
# Service's NodePort for GATEWAY_PORT. At least one of NODE_PORT and GATEWAY. Optional DEPLOYMENT
# with NAMESPACE and REPLICAS (first wait until the Deployment reports REPLICAS ready pods). Reads go
# through this node's admin kubeconfig. ATTEMPTS (rounds, default 30), INTERVAL (seconds between
# rounds, default 2), CURL_TIMEOUT (seconds per request, default 5); HAKUBE_ROOT.
# Prints one JSON summary line on stdout; on failure, one line on stderr per target that never answered.
set -euo pipefail

script_name="smoke-check"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

attempts="${ATTEMPTS:-30}"
interval="${INTERVAL:-2}"
curl_timeout="${CURL_TIMEOUT:-5}"
kubeconfig="$admin_kubeconfig"
plain='^[0-9A-Za-z.-]+$' # names and addresses end up in the JSON summary unescaped
port_number='^[0-9]{1,5}$'

kube() {
  kubectl --kubeconfig "$kubeconfig" "$@" 2>/dev/null || true
}

[[ -n "${NODE_PORT:-}${GATEWAY:-}" ]] || fail "set NODE_PORT, GATEWAY or both"
[[ -z "${NODE_PORT:-}" || "$NODE_PORT" =~ $port_number ]] || fail "NODE_PORT=$NODE_PORT is not a port number"
[[ "$attempts" =~ ^[1-9][0-9]{0,3}$ ]] || fail "ATTEMPTS=$attempts is not a count from 1 to 9999"
if [[ -n "${GATEWAY:-}" ]]; then
  [[ "$GATEWAY" =~ ^[a-z0-9.-]+/[a-z0-9.-]+$ ]] || fail "GATEWAY=$GATEWAY is not namespace/name"
  [[ "${GATEWAY_PORT:-}" =~ $port_number ]] || fail "GATEWAY_PORT=${GATEWAY_PORT:-} is not a port number"
  if [[ -n "${GATEWAY_SERVICE_SELECTOR:-}" ]]; then
    [[ "${GATEWAY_SERVICE_NAMESPACE:-}" =~ ^[a-z0-9.-]+$ ]] \
      || fail "GATEWAY_SERVICE_NAMESPACE=${GATEWAY_SERVICE_NAMESPACE:-} is not a namespace"
    [[ "$GATEWAY_SERVICE_SELECTOR" =~ ^[A-Za-z0-9./_=,-]+$ ]] \
      || fail "GATEWAY_SERVICE_SELECTOR=$GATEWAY_SERVICE_SELECTOR is not a label selector"
  fi
fi

node_names=()
node_addresses=()
read -ra entries <<<"${NODE_ADDRESSES:-}"
for entry in "${entries[@]}"; do
  name="${entry%%=*}"
  address="${entry#*=}"
  [[ "$name" =~ $plain && "$address" =~ $plain ]] || fail "bad node entry '$entry'"
  node_names+=("$name")
  node_addresses+=("$address")
done
if [[ -n "${NODE_PORT:-}" || -n "${GATEWAY_SERVICE_SELECTOR:-}" ]]; then
  ((${#node_addresses[@]} > 0)) || fail "NODE_ADDRESSES names no node"
fi

# Bounded polling: runs `$@` (which prints a value) until the value matches `pattern`; prints it.
await_value() {
  local pattern="$1" value="" round
  shift
  for ((round = 1; round <= attempts; round++)); do
    value="$("$@")"
    if [[ "$value" =~ $pattern ]]; then
      echo "$value"
      return 0
    fi
    if ((round < attempts)); then
      sleep "$interval"
    fi
  done
  echo "$value"
  return 1
}

summary_deployment=""
if [[ -n "${DEPLOYMENT:-}" ]]; then
  : "${NAMESPACE:?}" "${REPLICAS:?}"
  ready_replicas() {
    local ready
    ready="$(kube -n "$NAMESPACE" get deployment "$DEPLOYMENT" -o 'jsonpath={.status.readyReplicas}')"
    [[ "$ready" =~ ^[0-9]+$ ]] || ready=0
    if ((ready >= REPLICAS)); then
      echo "$ready"
    else
      echo "short:$ready" # not yet: await_value retries until the value is a bare count
    fi
  }
  ready="$(await_value '^[0-9]+$' ready_replicas)" \
    || fail "deployment $NAMESPACE/$DEPLOYMENT has ${ready#short:} of $REPLICAS replicas ready after $attempts attempts"
  summary_deployment="\"deployment\":\"$NAMESPACE/$DEPLOYMENT\",\"readyReplicas\":$ready,"
fi

# What to probe: kind (node | gateway), name, address, port.
kinds=()
names=()
addresses=()
ports=()
add_target() {
  kinds+=("$1")
  names+=("$2")
  addresses+=("$3")
  ports+=("$4")
}

if [[ -n "${NODE_PORT:-}" ]]; then
  for i in "${!node_addresses[@]}"; do
    add_target node "${node_names[i]}" "${node_addresses[i]}" "$NODE_PORT"
  done
fi

summary_gateway=""
if [[ -n "${GATEWAY:-}" ]]; then
  gateway_namespace="${GATEWAY%%/*}"
  gateway_name="${GATEWAY#*/}"
  if [[ -n "${GATEWAY_SERVICE_SELECTOR:-}" ]]; then
    gateway_node_port() {
      kube -n "$GATEWAY_SERVICE_NAMESPACE" get service -l "$GATEWAY_SERVICE_SELECTOR" \
        -o "jsonpath={.items[0].spec.ports[?(@.port==$GATEWAY_PORT)].nodePort}"
    }
    port="$(await_value "$port_number" gateway_node_port)" \
      || fail "gateway $GATEWAY: no Service labelled $GATEWAY_SERVICE_SELECTOR in $GATEWAY_SERVICE_NAMESPACE" \
        "with a NodePort for port $GATEWAY_PORT after $attempts attempts"
    for i in "${!node_addresses[@]}"; do
      add_target gateway "${node_names[i]}" "${node_addresses[i]}" "$port"
    done
  else
    gateway_address() {
      kube -n "$gateway_namespace" get gateway "$gateway_name" -o 'jsonpath={.status.addresses[0].value}'
    }
    address="$(await_value "$plain" gateway_address)" \
      || fail "gateway $GATEWAY has no address in its status after $attempts attempts"
    port="$GATEWAY_PORT"
    add_target gateway "$gateway_name" "$address" "$port"
  fi
fi

# Rounds over the targets still failing, so a slow one does not hold up the others' checks.
statuses=()
tries=()
pending=("${!addresses[@]}")
for ((round = 1; round <= attempts && ${#pending[@]} > 0; round++)); do
  failing=()
  for i in "${pending[@]}"; do
    code="$(curl --silent --output /dev/null --write-out '%{http_code}' --connect-timeout "$curl_timeout" \
      --max-time "$curl_timeout" "http://${addresses[i]}:${ports[i]}/" 2>/dev/null || true)"
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

describe() {
  local i="$1"
  if [[ "${kinds[i]}" == node ]]; then
    echo "node ${names[i]} (${addresses[i]})"
  elif [[ -n "${GATEWAY_SERVICE_SELECTOR:-}" ]]; then
    echo "gateway $GATEWAY through node ${names[i]} (${addresses[i]})"
  else
    echo "gateway $GATEWAY at ${addresses[i]}"
  fi
}

if ((${#pending[@]} > 0)); then
  for i in "${pending[@]}"; do
    log "$(describe "$i"): http://${addresses[i]}:${ports[i]}/ gave no" \
      "HTTP 200 in $attempts attempts (last status ${statuses[i]})"
  done
  exit 1
fi

node_entries=()
gateway_entries=()
for i in "${!addresses[@]}"; do
  entry="{\"name\":\"${names[i]}\",\"address\":\"${addresses[i]}\",\"status\":${statuses[i]},\"attempts\":${tries[i]}}"
  if [[ "${kinds[i]}" == node ]]; then
    node_entries+=("$entry")
  else
    gateway_entries+=("$entry")
  fi
done
summary_node_port=""
if [[ -n "${NODE_PORT:-}" ]]; then
  summary_node_port="\"nodePort\":$NODE_PORT,"
fi
if [[ -n "${GATEWAY:-}" ]]; then
  summary_gateway=",\"gateway\":{\"name\":\"$GATEWAY\",\"port\":$port,\"targets\":[$(IFS=,; echo "${gateway_entries[*]}")]}"
fi
echo "{\"ok\":true,$summary_node_port$summary_deployment\"nodes\":[$(IFS=,; echo "${node_entries[*]}")]$summary_gateway}"
