#!/usr/bin/env bash
# Helpers shared by hakube's host scripts. A script pulls them in with the two lines
#   # shellcheck source-path=SCRIPTDIR source=lib.sh
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# which reads this file from beside it when tests run the script from disk; for the command sent
# over SSH, configs/scripts.py puts this file's text in place of that line, so every remote command
# stays one self-contained script. Callers define log() and may set root (the HAKUBE_ROOT prefix).

# Write $2 (plus a newline) to $1 only when it differs; return 0 when the file changed.
write_if_changed() {
  local path="$1" content="$2"
  if [[ -f "$path" ]] && [[ "$(cat "$path")" == "$content" ]]; then
    return 1
  fi
  mkdir -p "$(dirname "$path")"
  printf '%s\n' "$content" >"$path.hakube-tmp"
  mv "$path.hakube-tmp" "$path"
  log "wrote ${path#"${root:-}"}"
  return 0
}

# Bootstrap tokens and 64-hex keys never reach a log.
redact() { sed -E 's/[a-z0-9]{6}\.[a-z0-9]{16}/[redacted-token]/g; s/[a-fA-F0-9]{64}/[redacted-key]/g'; }

# A configuration given on stdin (when stdin is not a terminal and not empty) replaces file $1,
# written 0600 and swapped in with one rename, when it differs.
install_stdin_config() {
  local config="$1" payload
  [[ -t 0 ]] && return 0
  payload="$(cat)"
  if [[ -n "$payload" ]] && { [[ ! -f "$config" ]] || [[ "$(cat "$config")" != "$payload" ]]; }; then
    mkdir -p "$(dirname "$config")"
    (umask 077 && printf '%s\n' "$payload" >"$config.hakube-tmp")
    mv -f "$config.hakube-tmp" "$config"
    log "wrote ${config#"${root:-}"}"
  fi
}

# Whether $1 is a containerd configuration as configs/containerd.py renders it: config version 3.
is_containerd_config() { [[ "$1" == "version = 3"$'\n'* ]]; }

# containerd's configuration (configs/containerd.py) on stdin replaces /etc/containerd/config.toml when
# it differs, and containerd restarts to read it; running containers keep running (each has its own
# shim process). Callers that upgrade a node call this while it is drained.
install_containerd_config() {
  local config="${root:-}/etc/containerd/config.toml" payload=""
  [[ -t 0 ]] || payload="$(cat)"
  if ! is_containerd_config "$payload"; then
    echo "no containerd configuration (config version 3, configs/containerd.py) on stdin" >&2
    return 1
  fi
  if write_if_changed "$config" "$payload"; then
    systemctl restart containerd
  fi
}
