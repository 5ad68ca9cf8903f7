#!/usr/bin/env bash
# Helpers shared by hakube's etcd scripts (etcd-snapshot.sh, etcd-restore.sh, etcd-recover.sh),
# inlined like lib.sh where a script sources them, after lib.sh (configs/scripts.py), whose log,
# fail and root they use.

# etcdctl reads its settings from ETCDCTL_* variables, so nothing lands in argv. Defaults: the local
# member as kubeadm runs it, with kubeadm's etcd CA and its etcd healthcheck client certificate.
etcd_client_defaults() {
  export ETCDCTL_API=3
  export ETCDCTL_ENDPOINTS="${ETCDCTL_ENDPOINTS:-https://127.0.0.1:2379}"
  export ETCDCTL_DIAL_TIMEOUT="${ETCDCTL_DIAL_TIMEOUT:-5s}"
  export ETCDCTL_COMMAND_TIMEOUT="${ETCDCTL_COMMAND_TIMEOUT:-15s}"
  if [[ "$ETCDCTL_ENDPOINTS" == https://* ]]; then
    local pki="${root:-}/etc/kubernetes/pki/etcd"
    export ETCDCTL_CACERT="${ETCDCTL_CACERT:-$pki/ca.crt}"
    export ETCDCTL_CERT="${ETCDCTL_CERT:-$pki/healthcheck-client.crt}"
    export ETCDCTL_KEY="${ETCDCTL_KEY:-$pki/healthcheck-client.key}"
  fi
}

# The tool for snapshot files: etcdutl (etcd 3.5+; 3.6 has no `etcdctl snapshot status|restore`),
# else etcd 3.4's etcdctl, which still does both (Debian and Ubuntu ship 3.4 without etcdutl).
etcd_file_tool() {
  if command -v etcdutl >/dev/null 2>&1; then
    echo etcdutl
  else
    echo etcdctl
  fi
}

# "https://127.0.0.1:2379,..." -> "127.0.0.1 2379": the first endpoint's address and port.
endpoint_address() {
  local rest="${1%%,*}"
  rest="${rest#*://}"
  rest="${rest%%/*}"
  printf '%s %s\n' "${rest%:*}" "${rest##*:}"
}

# True while something accepts TCP connections at address $1, port $2.
port_open() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

# The local member has stopped: nothing listens on its client port any more.
local_member_down() {
  local address port
  read -r address port < <(endpoint_address "$ETCDCTL_ENDPOINTS")
  ! port_open "$address" "$port"
}

local_member_healthy() {
  etcdctl endpoint health >/dev/null 2>&1
}

# Run "$@" until it succeeds, every POLL_S seconds (default 1) for at most WAIT_S (default 180).
wait_until() {
  local what="$1" limit="${WAIT_S:-180}"
  shift
  local deadline=$((SECONDS + limit))
  until "$@"; do
    ((SECONDS < deadline)) || fail "timed out after ${limit}s waiting for $what"
    sleep "${POLL_S:-1}"
  done
}

# The member names `etcdctl member list` shows, sorted, comma-separated (an unstarted member has none).
member_names() {
  etcdctl member list | awk -F', ' '$3 != "" { print $3 }' | sort | paste -sd, -
}

# kubelet stops a static pod whose manifest leaves /etc/kubernetes/manifests and starts it again
# when the file comes back: "parking" a manifest beside that directory stops the pod.
manifests_dir() { printf '%s\n' "${root:-}/etc/kubernetes/manifests"; }
parked_dir() { printf '%s\n' "${root:-}/etc/kubernetes/hakube-parked-manifests"; }

park_static_pods() {
  local pod
  for pod in "$@"; do
    if [[ -f "$(manifests_dir)/$pod.yaml" ]]; then
      mkdir -p "$(parked_dir)"
      chmod 0700 "$(parked_dir)"
      mv -f "$(manifests_dir)/$pod.yaml" "$(parked_dir)/$pod.yaml"
      log "stopped static pod $pod (manifest parked in ${root:+<root>}/etc/kubernetes/hakube-parked-manifests)"
    fi
  done
}

unpark_static_pods() {
  local pod
  for pod in "$@"; do
    if [[ -f "$(parked_dir)/$pod.yaml" ]]; then
      mv -f "$(parked_dir)/$pod.yaml" "$(manifests_dir)/$pod.yaml"
      log "started static pod $pod"
    fi
  done
}

# The etcd manifest while it is parked (edits never happen under kubelet's eyes).
parked_etcd_manifest() { printf '%s\n' "$(parked_dir)/etcd.yaml"; }

# The node's etcd manifest, live or parked ('' when kubelet does not run etcd here).
etcd_manifest() {
  local file
  for file in "$(parked_etcd_manifest)" "$(manifests_dir)/etcd.yaml"; do
    if [[ -f "$file" ]]; then
      printf '%s\n' "$file"
      return
    fi
  done
}

# kubeadm writes each etcd flag as one command item ("    - --name=value") below "    - etcd".
manifest_flag() {
  sed -n -E "s/^[[:space:]]*- --$2=(.*)\$/\\1/p" "$1" | head -n 1
}

_edit_manifest() {
  local file="$1" tmp
  shift
  tmp="$(mktemp "$file.hakube-edit.XXXXXX")"
  if ! "$@" <"$file" >"$tmp"; then
    rm -f "$tmp"
    fail "could not edit $file"
  fi
  chmod --reference="$file" "$tmp"
  mv -f "$tmp" "$file"
}

# shellcheck disable=SC2016 # awk programs
drop_manifest_flag() {
  _edit_manifest "$1" awk -v flag="--$2" '!($0 ~ ("^[[:space:]]*- " flag "(=.*)?[[:space:]]*$"))'
}

# Add "--name" (a switch) or "--name=value" as the first flag below "- etcd", replacing any earlier one.
# shellcheck disable=SC2016 # awk programs
set_manifest_flag() {
  local file="$1" item="--$2${3+=$3}"
  drop_manifest_flag "$file" "$2"
  _edit_manifest "$file" awk -v item="$item" '
    { print }
    !done && $0 ~ /^[[:space:]]*- etcd[[:space:]]*$/ { match($0, /^[[:space:]]*- /); print substr($0, 1, RLENGTH) item; done = 1 }'
  awk -v item="$item" '{ sub(/^[[:space:]]*- /, "") } $0 == item { found = 1 } END { exit !found }' "$file" ||
    fail "$file has no '- etcd' command item to add $item below"
}
