#!/usr/bin/env bash
# The library every hakube host script sources, right after `set -euo pipefail`, with exactly
#   script_name=NAME
#   # shellcheck source-path=SCRIPTDIR source=lib.sh
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# which reads this file from beside it when tests run the script from disk; for the command sent
# over SSH, configs/scripts.py puts this file's text in place of those source lines (and refuses a
# script that names lib.sh any other way), so every remote command stays one self-contained script.
#
# Conventions it gives every script: log lines and apt's chatter go to stderr (what `pulumi up`
# shows: the steps log stderr), stdout carries only what a script prints for the program to parse
# (a kubeconfig, credentials, a JSON report); every path is below $root (HAKUBE_ROOT: tests point it
# at a scratch root).

root="${HAKUBE_ROOT:-}"
# The kubeconfig kubeadm writes on a control-plane node (configs/kubeadm.py ADMIN_KUBECONFIG).
# shellcheck disable=SC2034 # for the scripts that source this file
admin_kubeconfig="$root/etc/kubernetes/admin.conf"

log() { printf '%s: %s\n' "${script_name:?set script_name before sourcing lib.sh}" "$*" >&2; }

fail() {
  log "$*"
  exit 1
}

# Stdin replaces file $1 in one rename (a reader never sees half a file), with mode $2 (default 0644)
# set before the rename; the temporary file sits beside $1 so the rename stays on one filesystem.
atomic_write() {
  local path="$1" mode="${2:-0644}" tmp
  mkdir -p "$(dirname "$path")"
  tmp="$(mktemp "$path.hakube-tmp.XXXXXX")"
  if ! { cat >"$tmp" && chmod "$mode" "$tmp" && mv -f "$tmp" "$path"; }; then
    rm -f "$tmp"
    return 1
  fi
}

# Write $2 (plus a newline) to $1 (mode $3, default 0644) only when it differs; return 0 when the
# file changed.
write_if_changed() {
  local path="$1" content="$2" mode="${3:-0644}"
  if [[ -f "$path" ]] && [[ "$(cat "$path")" == "$content" ]]; then
    return 1
  fi
  printf '%s\n' "$content" | atomic_write "$path" "$mode"
  log "wrote ${path#"$root"}"
  return 0
}

# Bootstrap tokens and 64-hex keys never reach a log.
redact() { sed -E 's/[a-z0-9]{6}\.[a-z0-9]{16}/[redacted-token]/g; s/[a-fA-F0-9]{64}/[redacted-key]/g'; }

# A configuration given on stdin (when stdin is not a terminal and not empty) replaces file $1,
# written 0600, when it differs.
install_stdin_config() {
  local config="$1" payload
  [[ -t 0 ]] && return 0
  payload="$(cat)"
  [[ -n "$payload" ]] || return 0
  write_if_changed "$config" "$payload" 0600 || true
}

# Whether $1 is a containerd configuration as configs/containerd.py renders it: config version 3.
is_containerd_config() { [[ "$1" == "version = 3"$'\n'* ]]; }

# containerd's configuration (configs/containerd.py) on stdin replaces /etc/containerd/config.toml when
# it differs, and containerd restarts to read it; running containers keep running (each has its own
# shim process). Callers that upgrade a node call this while it is drained.
install_containerd_config() {
  local config="$root/etc/containerd/config.toml" payload=""
  [[ -t 0 ]] || payload="$(cat)"
  if ! is_containerd_config "$payload"; then
    log "no containerd configuration (config version 3, configs/containerd.py) on stdin"
    return 1
  fi
  if write_if_changed "$config" "$payload"; then
    systemctl restart containerd
  fi
}

# The installed version of package $1, or nothing.
installed_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }

# Whether package $1 is installed (not merely known to dpkg, e.g. removed with its config left).
package_installed() { [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" == installed ]]; }

apt_update() { DEBIAN_FRONTEND=noninteractive apt-get update -q >&2; }

# Install those of the packages that are missing (apt-get options such as --no-install-recommends
# may come first); nothing at all (no apt-get update) when every one is installed.
install_missing_packages() {
  local options=() missing=() arg
  for arg in "$@"; do
    if [[ "$arg" == -* ]]; then
      options+=("$arg")
    elif ! package_installed "$arg"; then
      missing+=("$arg")
    fi
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  apt_update
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${options[@]}" "${missing[@]}" >&2
  log "installed ${missing[*]}"
}

# The Kubernetes packages' apt source, when the stack gives one (packages.kubernetesAptSource).
write_kubernetes_apt_source() {
  [[ -n "${KUBERNETES_APT_SOURCE:-}" ]] || return 0
  write_if_changed "$root/etc/apt/sources.list.d/hakube-kubernetes.list" "$KUBERNETES_APT_SOURCE" || true
}

# The apt version of kubeadm for Kubernetes $1 (x.y.z) that the sources offer, e.g. 1.37.2-1.1, or nothing.
kubernetes_candidate() { apt-cache madison kubeadm | awk -v v="$1" '$3 ~ "^"v"-" {print $3; exit}'; }

# Install packages $2... at apt version $1 and hold them there (apt pinning: an unattended upgrade
# must never move the kubelet or kubeadm to another version than the cluster's).
install_held() {
  local version="$1" pkgs=() pkg
  shift
  for pkg in "$@"; do pkgs+=("$pkg=$version"); done
  apt-mark unhold "$@" >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades --allow-change-held-packages \
    "${pkgs[@]}" >&2
  apt-mark hold "$@" >/dev/null
}
