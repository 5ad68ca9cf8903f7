#!/usr/bin/env bash
# Place a node's set of files (its kubeadm config, patches and kubelet record) in one step, read
# from stdin one line a file: octal mode, absolute path, base64 of the content
# (configs/remote.py file_set_stdin). Every new content is first written beside its destination;
# only when all are written are they renamed into place, each with one rename, so a bad line or a
# full disk part way leaves every destination as it was. The previous file stays beside it as
# PATH.hakube-prev. These files have no daemon to check or reload them (kubeadm reads them when it
# runs); daemon configurations go through config-drop.sh.
# Idempotent: a file whose content is unchanged is not rewritten (only its mode set, if that
# changed); with nothing changed, says "unchanged" and exits 0.
# ACTION=remove (the step's delete, handed the same stdin): every listed file and its
# PATH.hakube-prev are removed; none there is "already removed".
#
# Environment: ACTION (apply, the default, or remove); HAKUBE_ROOT (prefix for every path; tests
# point it at a scratch root).
set -euo pipefail

root="${HAKUBE_ROOT:-}"
log() { printf 'file-set: %s\n' "$*"; }
fail() {
  printf 'file-set: %s\n' "$*" >&2
  exit 1
}

if [[ "${ACTION:-apply}" == remove ]]; then
  removed=0
  while read -r mode path _; do
    [[ -n "$mode" ]] || continue
    [[ "$path" == /* ]] || fail "${path@Q}: not an absolute path"
    for file in "$root$path" "$root$path.hakube-prev"; do
      if [[ -e "$file" ]]; then
        rm -f "$file"
        removed=$((removed + 1))
      fi
    done
  done
  if ((removed == 0)); then log "already removed"; else log "removed $removed files"; fi
  exit 0
fi
[[ "${ACTION:-apply}" == apply ]] || fail "unknown ACTION ${ACTION@Q} (apply or remove)"

candidates=()
destinations=()
changed=()
trap 'rm -f "${candidates[@]}"' EXIT
count=0
while read -r mode path encoded; do
  [[ -n "$mode" ]] || continue
  [[ "$mode" =~ ^0?[0-7]{3}$ ]] || fail "bad mode ${mode@Q} in line $((count + 1))"
  [[ "$path" == /* ]] || fail "${path@Q}: not an absolute path"
  count=$((count + 1))
  dest="$root$path"
  mkdir -p "$(dirname "$dest")"
  # Beside the destination, so the final mv is a rename within one filesystem (atomic).
  candidate="$(mktemp "$dest.hakube-new.XXXXXX")"
  candidates+=("$candidate")
  base64 -d <<<"$encoded" >"$candidate" 2>/dev/null || fail "$path: the content is not base64"
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

if ((${#destinations[@]} == 0)); then
  log "unchanged ($count files)"
  exit 0
fi
for i in "${!destinations[@]}"; do
  dest="${destinations[$i]}"
  if [[ -f "$dest" ]]; then
    cp -p "$dest" "$dest.hakube-prev"
  fi
  mv -f "${changed[$i]}" "$dest"
  log "installed ${dest#"$root"}"
done
