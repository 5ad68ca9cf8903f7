#!/usr/bin/env bash
# Start (ENABLED=true) or stop the etcd snapshot timer whose units file-set.sh has just placed,
# after systemd has read them again. Idempotent: systemctl enable --now on an enabled, running
# timer changes nothing.
#
# Environment: UNIT (default hakube-etcd-snapshot), ENABLED (true | false).
set -euo pipefail

unit="${UNIT:-hakube-etcd-snapshot}"
log() { printf 'etcd-snapshot-timer: %s\n' "$*"; }

systemctl daemon-reload
if [[ "${ENABLED:-true}" == true ]]; then
  systemctl enable --now "$unit.timer"
  log "$unit.timer enabled; next run: $(systemctl show -P NextElapseUSecRealtime "$unit.timer" 2>/dev/null || echo unknown)"
else
  systemctl disable --now "$unit.timer"
  log "$unit.timer disabled (etcd.snapshots.enabled is false)"
fi
