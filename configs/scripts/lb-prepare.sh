#!/usr/bin/env bash
# Load-balancer node prerequisites: HAProxy, keepalived and curl (the track script's probe),
# net.ipv4.ip_nonlocal_bind=1 (HAProxy binds the VIP on the node that does not hold it), and the
# unprivileged user keepalived runs its track script as (enable_script_security).
# Idempotent: a second run installs nothing, writes nothing and creates nobody.
#
# Environment:
#   SCRIPT_USER  the track script's user (default keepalived_script)
#   HAKUBE_ROOT  prefix for every path (tests point it at a scratch root)
set -euo pipefail

script_name="lb-prepare"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

script_user="${SCRIPT_USER:-keepalived_script}"
export DEBIAN_FRONTEND=noninteractive

allow_nonlocal_bind() {
  local conf="$root/etc/sysctl.d/90-hakube-lb.conf"
  local wanted="# hakube: HAProxy binds the API VIP even on the node that does not hold it
net.ipv4.ip_nonlocal_bind = 1"
  write_if_changed "$conf" "$wanted" || true
  if [[ "$(sysctl -n net.ipv4.ip_nonlocal_bind)" != 1 ]]; then
    sysctl -q -w net.ipv4.ip_nonlocal_bind=1
    log "net.ipv4.ip_nonlocal_bind set to 1"
  fi
}

create_script_user() {
  if getent passwd "$script_user" >/dev/null; then
    return 0
  fi
  useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin "$script_user"
  log "created system user $script_user"
}

install_missing_packages --no-install-recommends haproxy keepalived curl socat
allow_nonlocal_bind
create_script_user
log "ready"
