#!/usr/bin/env bash
# Start (ENABLED=true) or stop the etcd snapshot timer whose units file-set.sh has just placed,
# after systemd has read them again. Idempotent: systemctl enable --now on an enabled, running
# timer changes nothing.
#
# Environment: UNIT (default hakube-etcd-snapshot), ENABLED (true | false).
set -euo pipefail

script_name="etcd-snapshot-timer"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

unit="${UNIT:-hakube-etcd-snapshot}"

systemctl daemon-reload
if [[ "${ENABLED:-true}" == true ]]; then
  systemctl enable --now "$unit.timer"
  log "$unit.timer enabled; next run: $(systemctl show -P NextElapseUSecRealtime "$unit.timer" 2>/dev/null || echo unknown)"
else
  systemctl disable --now "$unit.timer"
  log "$unit.timer disabled (etcd.snapshots.enabled is false)"
fi
