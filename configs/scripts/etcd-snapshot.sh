#!/usr/bin/env bash
# Snapshot this control-plane node's etcd member, check the file, keep the newest KEEP, and copy
# it off the node to the backup target over SSH, where the newest TARGET_KEEP of this node are
# kept. Run by the hakube-etcd-snapshot timer (EnvironmentFile /etc/hakube/etcd-snapshot.env),
# before each control-plane upgrade, and before a control-plane node is removed. Prints one JSON
# line: the snapshot, its revision and key count, and where the copy went.
# One snapshot at a time on a node (a lock); a failed copy fails the run but keeps the local file.
#
# Environment (configs/etcd.py snapshot_env):
#   CLUSTER_NAME, NODE_NAME  name the files: <cluster>-<node>-<UTC time>-<reason>[-<label>].db
#   SNAPSHOT_DIR             local directory (created 0700); KEEP: files kept there (default 5)
#   REASON                   scheduled | pre-upgrade | pre-removal | manual; LABEL: optional suffix
#   MODE                     save (default) | check (tools and directory only, no snapshot)
#   ETCDCTL_ENDPOINTS        default https://127.0.0.1:2379, with kubeadm's etcd client certificates
#   TARGET_ADDRESS           the backup target; empty: no off-node copy. With it: TARGET_NAME,
#                            TARGET_PORT, TARGET_USER, TARGET_DIR, TARGET_KEEP, BACKUP_KEY (private key
#                            file), KNOWN_HOSTS (file), HOST_KEY_CHECK (yes | accept-new)
#   HAKUBE_ROOT              prefix for every local path (tests point it at a scratch root)
set -euo pipefail

script_name="etcd-snapshot"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${CLUSTER_NAME:?CLUSTER_NAME is required}"
: "${NODE_NAME:?NODE_NAME is required}"
: "${SNAPSHOT_DIR:?SNAPSHOT_DIR is required}"
keep="${KEEP:-5}"
reason="${REASON:-manual}"
mode="${MODE:-save}"
dir="$root$SNAPSHOT_DIR"

# shellcheck source-path=SCRIPTDIR source=lib-etcd.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib-etcd.sh"

[[ "$keep" =~ ^[1-9][0-9]*$ ]] || fail "KEEP must be a positive number, not ${keep@Q}"
[[ "$reason" =~ ^(scheduled|pre-upgrade|pre-removal|manual)$ ]] || fail "unknown REASON ${reason@Q}"
[[ -z "${LABEL:-}" || "$LABEL" =~ ^[a-z0-9-]+$ ]] || fail "LABEL must be lower-case letters, digits and '-'"
etcd_client_defaults
# A snapshot streams the whole database: give it longer than a single request.
export ETCDCTL_COMMAND_TIMEOUT="${SNAPSHOT_TIMEOUT:-10m}"
command -v etcdctl >/dev/null || fail "etcdctl is not installed (node-prereqs.sh installs etcd-client)"
offsite=false
if [[ -n "${TARGET_ADDRESS:-}" ]]; then
  offsite=true
  for name in TARGET_PORT TARGET_USER TARGET_DIR TARGET_KEEP BACKUP_KEY KNOWN_HOSTS HOST_KEY_CHECK; do
    [[ -n "${!name:-}" ]] || fail "$name is required with TARGET_ADDRESS"
  done
  [[ "$TARGET_KEEP" =~ ^[1-9][0-9]*$ ]] || fail "TARGET_KEEP must be a positive number"
  command -v ssh >/dev/null || fail "ssh (openssh-client) is not installed: no off-node copy possible"
fi

mkdir -p "$dir" "$root/run"
chmod 0700 "$dir"
if [[ "$mode" == check ]]; then
  [[ "$offsite" == false || -f "$root$BACKUP_KEY" ]] || fail "the backup key $BACKUP_KEY is missing"
  log "ready: snapshots go to $SNAPSHOT_DIR${TARGET_ADDRESS:+ and ${TARGET_NAME:-$TARGET_ADDRESS}:$TARGET_DIR}"
  printf '{"node":"%s","ready":true}\n' "$NODE_NAME"
  exit 0
fi
[[ "$mode" == save ]] || fail "unknown MODE ${mode@Q}"

exec 9>"$root/run/hakube-etcd-snapshot.lock"
flock -w 900 9 || fail "another snapshot has held the lock for 15 minutes"

prefix="$CLUSTER_NAME-$NODE_NAME-"
# UTC with milliseconds: names sort by time, and two snapshots in one second do not collide.
name="$prefix$(date -u +%Y%m%dT%H%M%S.%3NZ)-$reason${LABEL:+-$LABEL}.db"
path="$dir/$name"
trap 'rm -f "$path.part"' EXIT
etcdctl snapshot save "$path" >/dev/null 2>"$dir/.last-save.log" ||
  fail "etcdctl snapshot save failed: $(tail -n 5 "$dir/.last-save.log")"
chmod 0600 "$path"

tool="$(etcd_file_tool)"
[[ "$tool" == etcdutl ]] || log "etcdutl not found (etcd 3.4): checking the file with etcdctl snapshot status"
status="$("$tool" snapshot status "$path" -w json 2>&1)" || {
  mv -f "$path" "$path.bad"
  fail "the snapshot does not pass $tool snapshot status (kept as $name.bad): $status"
}
field() { sed -n -E "s/.*\"$1\":([0-9]+).*/\\1/p" <<<"$status"; }
revision="$(field revision)"
keys="$(field totalKey)"
[[ -n "$revision" && -n "$keys" ]] || fail "unexpected snapshot status: $status"
size="$(stat -c %s "$path")"
log "saved $name: revision $revision, $keys keys, $size bytes"

# Newest first by name (the names sort by time); only this node's snapshots count.
mapfile -t old < <(find "$dir" -maxdepth 1 -type f -name "$prefix*.db" -printf '%f\n' | sort -r | tail -n +"$((keep + 1))")
for file in "${old[@]}"; do
  rm -f "${dir:?}/$file"
  log "removed $file (keeping the newest $keep)"
done
kept="$(find "$dir" -maxdepth 1 -type f -name "$prefix*.db" | wc -l)"

remote_dir="" remote_kept=0
if [[ "$offsite" == true ]]; then
  remote_dir="$TARGET_DIR/$CLUSTER_NAME/$NODE_NAME"
  sum="$(sha256sum "$path" | cut -d' ' -f1)"
  # One session: write beside the final name, check the digest, rename, prune, count. The values
  # are checked by the stack's model (plain names and paths) and quoted again here.
  # shellcheck disable=SC2016 # expanded by the target's shell
  printf -v remote 'set -eu; umask 077; d=%q; f=%q; mkdir -p "$d"; cat >"$d/.$f.partial";
echo "%s  $d/.$f.partial" | sha256sum -c --status || { rm -f "$d/.$f.partial"; echo "digest mismatch" >&2; exit 3; };
mv -f "$d/.$f.partial" "$d/$f";
ls -1 "$d" | grep -E %q | sort -r | tail -n +%d | while read -r old; do rm -f "$d/$old"; done;
ls -1 "$d" | grep -cE %q' \
    "$remote_dir" "$name" "$sum" "^$prefix.*\\.db\$" "$((TARGET_KEEP + 1))" "^$prefix.*\\.db\$"
  ssh_options=(-i "$root$BACKUP_KEY" -p "$TARGET_PORT" -o BatchMode=yes -o IdentitiesOnly=yes
    -o "UserKnownHostsFile=$root$KNOWN_HOSTS" -o "StrictHostKeyChecking=$HOST_KEY_CHECK"
    -o ConnectTimeout=15 -o ServerAliveInterval=15 -o ServerAliveCountMax=4 -F /dev/null)
  # shellcheck disable=SC2029 # $remote is built above to run on the target
  if ! remote_kept="$(ssh "${ssh_options[@]}" "$TARGET_USER@$TARGET_ADDRESS" "$remote" <"$path" 2>"$dir/.last-copy.log")"; then
    fail "copying $name to ${TARGET_NAME:-$TARGET_ADDRESS}:$remote_dir failed (the local snapshot is kept):" \
      "$(tail -n 5 "$dir/.last-copy.log")"
  fi
  log "copied $name to ${TARGET_NAME:-$TARGET_ADDRESS}:$remote_dir ($remote_kept kept there)"
fi

printf '{"node":"%s","snapshot":"%s","reason":"%s","revision":%s,"keys":%s,"bytes":%s,"kept":%s,' \
  "$NODE_NAME" "$name" "$reason" "$revision" "$keys" "$size" "$kept"
if [[ "$offsite" == true ]]; then
  printf '"offsite":"%s:%s/%s","offsiteKept":%s}\n' "${TARGET_NAME:-$TARGET_ADDRESS}" "$remote_dir" "$name" "$remote_kept"
else
  printf '"offsite":null}\n'
fi
