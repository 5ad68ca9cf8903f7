#!/usr/bin/env bash
# Install (ACTION=install) or remove (ACTION=remove) the SSH key with which etcd-snapshot.sh copies
# snapshots to the backup target. The key arrives only on stdin, as BACKUP_PRIVATE_KEY (base64 of
# the key file, one line; configs/remote.py's secret prologue exports it), is written 0600 in a
# 0700 directory and never printed. Prints the key's public half: the line to authorize on the
# target. KNOWN_HOSTS_LINE, when given, pins the target's host key.
# Idempotent: unchanged files are not rewritten.
#
# Environment:
#   ACTION            install (default) | remove
#   BACKUP_KEY        path of the private key file; KNOWN_HOSTS: path of its known_hosts file
#   KNOWN_HOSTS_LINE  "<host> <key type> <key>" or empty (the first key seen is then kept)
#   HAKUBE_ROOT       prefix for every path (tests point it at a scratch root)
set -euo pipefail

script_name="etcd-backup-key"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${BACKUP_KEY:?BACKUP_KEY is required}"
: "${KNOWN_HOSTS:?KNOWN_HOSTS is required}"
key="$root$BACKUP_KEY"
known="$root$KNOWN_HOSTS"

if [[ "${ACTION:-install}" == remove ]]; then
  rm -f "$key" "$known"
  log "removed the backup key and its known_hosts"
  exit 0
fi
[[ "${ACTION:-install}" == install ]] || fail "unknown ACTION ${ACTION@Q}"
: "${BACKUP_PRIVATE_KEY:?BACKUP_PRIVATE_KEY is required on stdin}"

umask 077
mkdir -p "$(dirname "$key")" "$(dirname "$known")"
chmod 0700 "$(dirname "$key")" "$(dirname "$known")"
candidate="$(mktemp "$key.hakube-new.XXXXXX")"
trap 'rm -f "$candidate"' EXIT
base64 -d <<<"$BACKUP_PRIVATE_KEY" >"$candidate" 2>/dev/null || fail "BACKUP_PRIVATE_KEY is not base64"
printf '\n' >>"$candidate" # ssh-keygen and ssh want the key file to end with a newline
public="$(ssh-keygen -y -P '' -f "$candidate" 2>/dev/null)" || fail "BACKUP_PRIVATE_KEY is not an unencrypted SSH private key"
if [[ -f "$key" ]] && cmp -s "$candidate" "$key"; then
  log "key unchanged"
else
  mv -f "$candidate" "$key"
  log "installed the backup key"
fi
chmod 0600 "$key"
if [[ -n "${KNOWN_HOSTS_LINE:-}" ]]; then
  write_if_changed "$known" "$KNOWN_HOSTS_LINE" || true
  chmod 0600 "$known"
fi
printf '%s\n' "$public"
