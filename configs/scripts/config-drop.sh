#!/usr/bin/env bash
# Atomic config drop: put the file read from stdin at DEST, validated by the daemon's own checker,
# swapped in with one rename, then reload the daemon; if the reload fails, put the previous file
# back and reload again. The previous file stays beside it as DEST.hakube-prev.
# Idempotent: unchanged content swaps nothing, reloads nothing, says "unchanged" and exits 0.
# ACTION=remove (the step's delete): STOP_CMD stops (and disables) what reads the file, then DEST and
# DEST.hakube-prev are removed; stdin is not read. Nothing there is "already removed".
#
# Environment:
#   DEST         absolute path of the file on the host, e.g. /etc/haproxy/haproxy.cfg (required)
#   CHECK_CMD    bash command that validates the candidate file given as "$1" (required to apply),
#                e.g. 'haproxy -c -f "$1"'
#   RELOAD_CMD   bash command that makes the daemon use DEST (required to apply),
#                e.g. 'systemctl reload-or-restart haproxy'
#   MODE         file mode of DEST (default 0644)
#   ACTION       apply (default) or remove
#   STOP_CMD     bash command run before a removal (default true), e.g. 'systemctl disable --now haproxy'
#   HAKUBE_ROOT  prefix for every path (tests point it at a scratch root)
set -euo pipefail

: "${DEST:?DEST is required (absolute path of the file)}"
mode="${MODE:-0644}"
script_name="config-drop: $DEST"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
dest="$root$DEST"
backup="$dest.hakube-prev"

if [[ "${ACTION:-apply}" == remove ]]; then
  if ! stop_output="$(bash -c "${STOP_CMD:-true}" 2>&1)"; then
    fail "stopping before the removal failed; the file is kept:
$stop_output"
  fi
  if [[ ! -e "$dest" && ! -e "$backup" ]]; then
    log "already removed"
    exit 0
  fi
  rm -f "$dest" "$backup"
  log "removed (and ${backup#"$root"})"
  exit 0
fi
[[ "${ACTION:-apply}" == apply ]] || fail "unknown ACTION ${ACTION@Q} (apply or remove)"
: "${CHECK_CMD:?CHECK_CMD is required (a bash command checking the file \$1)}"
: "${RELOAD_CMD:?RELOAD_CMD is required (a bash command reloading the daemon)}"

mkdir -p "$(dirname "$dest")"
# The candidate lives beside DEST so the final mv is a rename within one filesystem (atomic).
candidate="$(mktemp "$dest.hakube-new.XXXXXX")"
restored=""
trap 'rm -f "$candidate" "$restored"' EXIT
cat >"$candidate"

if [[ -f "$dest" ]] && cmp -s "$candidate" "$dest"; then
  log "unchanged"
  exit 0
fi

if ! check_output="$(bash -c "$CHECK_CMD" config-check "$candidate" 2>&1)"; then
  fail "rejected by the checker; the current file is kept and nothing was reloaded:
$check_output"
fi
chmod "$mode" "$candidate"

had_previous=false
if [[ -f "$dest" ]]; then
  cp -p "$dest" "$backup"
  had_previous=true
fi
mv -f "$candidate" "$dest"
log "installed (previous kept as ${backup#"$root"})"

if reload_output="$(bash -c "$RELOAD_CMD" 2>&1)"; then
  log "reloaded"
  exit 0
fi

# The reload failed: the daemon must not be left on a file it refused.
if [[ "$had_previous" == true ]]; then
  restored="$(mktemp "$dest.hakube-restore.XXXXXX")"
  cp -p "$backup" "$restored"
  mv -f "$restored" "$dest"
  if again="$(bash -c "$RELOAD_CMD" 2>&1)"; then
    fail "reload failed; the previous file is restored and reloaded:
$reload_output"
  fi
  fail "reload failed; the previous file is restored but reloading it failed too:
$reload_output
$again"
fi
rm -f "$dest"
fail "reload failed; there was no previous file, so the new one is removed again:
$reload_output"
