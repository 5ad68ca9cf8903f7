#!/usr/bin/env bash
# Place a host's set of files in one step, read from stdin one line a file: octal mode, absolute path,
# base64 of the content (configs/remote.py file_set_stdin). Every new content is first written beside its
# destination; only when all are written are they renamed into place, each with one rename, so a bad line
# or a full disk part way leaves every destination as it was. The previous file stays beside it as
# PATH.hakube-prev. kubeadm's files have no daemon to check or reload them (kubeadm reads them when it
# runs); daemon configurations with a checker go through config-drop.sh.
# Idempotent: a file whose content is unchanged is not rewritten (only its mode set, if that
# changed); with nothing changed, says "unchanged" and exits 0.
# REMOVE=true (the step's delete): the set's files and their PATH.hakube-prev are removed; none
# there is "already removed".
#
# Environment:
#   MANIFEST      optional absolute path of this set's record (one path a line): a file the previous run
#                 placed that is no longer in the set is removed, so a set owns exactly what it lists
#   REMOVE        true (the step's delete): remove every file of the record and the record; without
#                 MANIFEST, every file listed on stdin (the same stdin the step was created with)
#   SECRET_NAMES  optional names of variables (exported from the secret lines on stdin, configs/remote.py)
#                 whose values replace each ${NAME} in the files; a value must be base64 or a token
#                 ([A-Za-z0-9+/=._-]), so it cannot break the file it goes into, and is never printed
#   KEEP_PREVIOUS false: no PATH.hakube-prev is kept (a set holding keys: a retired key must not linger)
#   RELOAD_UNITS  optional systemd units to try-restart (only those running) once a file changed or went;
#                 after a systemctl daemon-reload when a unit drop-in (under /etc/systemd/) changed
#   HAKUBE_ROOT   prefix for every path (tests point it at a scratch root)
set -euo pipefail

script_name="file-set"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

manifest="${MANIFEST:+$root$MANIFEST}"
[[ -z "${MANIFEST:-}" || "$MANIFEST" == /* ]] || fail "MANIFEST must be an absolute path"
previous=()
if [[ -n "$manifest" && -f "$manifest" ]]; then
  mapfile -t previous <"$manifest"
fi

reload_units() {
  local changed_units_dir=$1
  [[ -n "${RELOAD_UNITS:-}" ]] || return 0
  if [[ "$changed_units_dir" == true ]]; then
    systemctl daemon-reload
  fi
  # shellcheck disable=SC2086  # a list of unit names
  systemctl try-restart $RELOAD_UNITS
  log "restarted (if running): $RELOAD_UNITS"
}

# Remove the files of the record that $@ does not name; sets `removed`.
removed=()
prune() {
  local old keep
  for old in "${previous[@]}"; do
    [[ "$old" == /* ]] || continue
    for keep in "$@"; do
      [[ "$old" == "$keep" ]] && continue 2
    done
    if [[ -e "$root$old" ]]; then
      rm -f "$root$old" "$root$old.hakube-prev"
      rmdir --ignore-fail-on-non-empty "$(dirname "$root$old")" 2>/dev/null || true
      removed+=("$old")
      log "removed $old"
    fi
  done
}

# Sets `removed`: every file listed on stdin (mode path base64 lines) that was there.
remove_listed() {
  local mode path _
  while read -r mode path _; do
    [[ -n "$mode" ]] || continue
    [[ "$path" == /* ]] || fail "${path@Q}: not an absolute path"
    if [[ -e "$root$path" || -e "$root$path.hakube-prev" ]]; then
      rm -f "$root$path" "$root$path.hakube-prev"
      removed+=("$path")
    fi
  done
}

if [[ "${REMOVE:-false}" == true ]]; then
  if [[ -n "$manifest" ]]; then
    prune
    rm -f "$manifest"
  else
    remove_listed
  fi
  if ((${#removed[@]} == 0)); then log "already removed"; else log "removed ${#removed[@]} files"; fi
  systemd=false
  for old in "${removed[@]}"; do [[ "$old" == /etc/systemd/* ]] && systemd=true; done
  ((${#removed[@]} == 0)) || reload_units "$systemd"
  exit 0
fi

# ${NAME} -> value for every name in SECRET_NAMES, checked before anything is written.
declare -A secrets=()
for name in ${SECRET_NAMES:-}; do
  [[ "$name" =~ ^[A-Z][A-Z0-9_]*$ ]] || fail "bad secret name ${name@Q}"
  value="${!name:-}"
  [[ "$value" =~ ^[A-Za-z0-9+/=._-]+$ ]] || fail "secret $name is missing or not base64/token characters"
  secrets["$name"]="$value"
done

substitute() {
  local file=$1 content name
  ((${#secrets[@]} > 0)) || return 0
  content="$(cat "$file"; printf x)"
  content="${content%x}"
  for name in "${!secrets[@]}"; do
    content="${content//"\${$name}"/"${secrets[$name]}"}"
  done
  printf '%s' "$content" >"$file"
}

candidates=()
destinations=()
changed=()
paths=()
trap 'rm -f "${candidates[@]}"' EXIT
count=0
while read -r mode path encoded; do
  [[ -n "$mode" ]] || continue
  [[ "$mode" =~ ^0?[0-7]{3}$ ]] || fail "bad mode ${mode@Q} in line $((count + 1))"
  [[ "$path" == /* ]] || fail "${path@Q}: not an absolute path"
  count=$((count + 1))
  paths+=("$path")
  dest="$root$path"
  mkdir -p "$(dirname "$dest")"
  # Beside the destination, so the final mv is a rename within one filesystem (atomic).
  candidate="$(mktemp "$dest.hakube-new.XXXXXX")"
  candidates+=("$candidate")
  base64 -d <<<"$encoded" >"$candidate" 2>/dev/null || fail "$path: the content is not base64"
  substitute "$candidate"
  if [[ -f "$dest" ]] && cmp -s "$candidate" "$dest"; then
    if [[ "$(stat -c %a "$dest")" != "${mode#0}" ]]; then
      chmod "$mode" "$dest"
      log "mode $mode on ${dest#"$root"}"
    fi
    continue
  fi
  chmod "$mode" "$candidate"
  destinations+=("$dest")
  changed+=("$candidate")
done
((count > 0)) || fail "no files on stdin"

systemd=false
for i in "${!destinations[@]}"; do
  dest="${destinations[$i]}"
  if [[ "${KEEP_PREVIOUS:-true}" != true ]]; then
    rm -f "$dest.hakube-prev"
  elif [[ -f "$dest" ]]; then
    cp -p "$dest" "$dest.hakube-prev"
  fi
  mv -f "${changed[$i]}" "$dest"
  [[ "${dest#"$root"}" == /etc/systemd/* ]] && systemd=true
  log "installed ${dest#"$root"}"
done
if [[ -n "$manifest" ]]; then
  prune "${paths[@]}"
  for old in "${removed[@]}"; do [[ "$old" == /etc/systemd/* ]] && systemd=true; done
  mkdir -p "$(dirname "$manifest")"
  printf '%s\n' "${paths[@]}" >"$manifest"
fi
if ((${#destinations[@]} == 0 && ${#removed[@]} == 0)); then
  log "unchanged ($count files)"
  exit 0
fi
reload_units "$systemd"
