#!/usr/bin/env bash
# Hypervisor preparation: KVM and libvirt installed, host processes confined to the reserved cores
# (so the cores pinned to control-plane vCPUs stay dedicated), the storage-pool directories, and
# libvirtd running. No reboot: the confinement is a cgroup v2 cpuset set by systemd at runtime and
# kept in drop-ins for the next boot.
# Idempotent: a second run writes nothing, installs nothing and changes no unit.
#
# Environment:
#   RESERVED_CPUS  cores for host processes, as systemd prints a cpuset ("0-1", "0-1,16") (required)
#   POOL_PATHS     absolute directories of the libvirt dir pools, one a line (or ':'-separated)
#   LIBVIRT_USER   optional login to add to the libvirt group (qemu+ssh://LOGIN@host/system)
#   HAKUBE_ROOT    prefix for every path (tests point it at a scratch root)
#
# Kernel threads and IRQs are not in any cgroup: keeping them off the pinned cores too needs boot
# parameters (irqaffinity=, isolcpus=/nohz_full=) and a reboot, which this script does not do.
set -euo pipefail

script_name="hypervisor-prepare"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${RESERVED_CPUS:?RESERVED_CPUS is required (a cpuset such as 0-1)}"
export DEBIAN_FRONTEND=noninteractive

# qemu-system-x86 is what Ubuntu's qemu-kvm transitional package pulls in (Debian 12 has no
# qemu-kvm); qemu-utils gives libvirt qemu-img for qcow2 volumes; virsh, curl and gpgv (the signed
# SHA256SUMS check) serve image-fetch.sh.
PACKAGES=(qemu-system-x86 qemu-utils libvirt-daemon-system libvirt-clients curl gpgv)
# Every host process systemd starts lives under these. machine.slice is deliberately absent:
# libvirt starts each VM's QEMU there, and a child cgroup can only use cores its parent allows, so
# confining machine.slice to the reserved cores would make every vcpupin onto a dedicated core fail.
# (The emulator threads still land on the reserved cores: the domain's <emulatorpin> puts them there.)
CONFINED_UNITS=(system.slice user.slice init.scope)
DROPIN_NAME=50-hakube-allowed-cpus.conf

check_input() {
  [[ "$RESERVED_CPUS" =~ ^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$ ]] \
    || fail "RESERVED_CPUS=$RESERVED_CPUS is not a cpuset such as 0-1 or 0,8"
  # AllowedCPUs= needs the unified cgroup hierarchy with the cpuset controller.
  local controllers="$root/sys/fs/cgroup/cgroup.controllers"
  if [[ ! -r "$controllers" ]] || ! grep -qw cpuset "$controllers"; then
    fail "no cgroup v2 cpuset controller (${controllers#"$root"}): host processes cannot be confined"
  fi
}

check_kvm() {
  [[ -e "$root/dev/kvm" ]] \
    || fail "no /dev/kvm: enable VT-x/AMD-V in the firmware and load kvm_intel or kvm_amd"
}

confine_host_processes() {
  local unit section current reload=0
  for unit in "${CONFINED_UNITS[@]}"; do
    # systemd prints a cpuset's ranges space-separated ("0-1 16").
    current="$(systemctl show --property=AllowedCPUs --value "$unit")"
    # Now, for the running system (--runtime: gone at reboot, when the drop-in takes over).
    if [[ "${current// /,}" != "$RESERVED_CPUS" ]]; then
      systemctl set-property --runtime "$unit" "AllowedCPUs=$RESERVED_CPUS"
      log "$unit confined to cores $RESERVED_CPUS"
    fi
    section=Slice
    [[ "$unit" == *.scope ]] && section=Scope
    if write_if_changed "$root/etc/systemd/system/$unit.d/$DROPIN_NAME" \
      "# hakube: host processes stay on the reserved cores; pinned vCPUs own the others.
[$section]
AllowedCPUs=$RESERVED_CPUS"; then
      reload=1
    fi
  done
  if [[ $reload -eq 1 ]]; then
    systemctl daemon-reload
  fi
}

create_pool_dirs() {
  local path paths=()
  IFS=$'\n:' read -r -d '' -a paths <<<"${POOL_PATHS:-}" || true
  for path in "${paths[@]}"; do
    [[ -n "$path" ]] || continue
    [[ "$path" == /* ]] || fail "pool path $path is not absolute"
    if [[ ! -d "$root$path" ]]; then
      # 0711 is what libvirt itself gives a dir pool it builds (parents get the default mode).
      mkdir -p "$root$path"
      chmod 0711 "$root$path"
      log "created pool directory $path"
    fi
  done
}

grant_libvirt_access() {
  local user="${LIBVIRT_USER:-}"
  [[ -n "$user" ]] || return 0
  # The system libvirtd socket is group libvirt, mode 0770 (Debian and Ubuntu packaging).
  if ! id -nG "$user" | tr ' ' '\n' | grep -qx libvirt; then
    usermod -a -G libvirt "$user"
    log "$user added to group libvirt"
  fi
}

start_libvirtd() {
  systemctl is-enabled --quiet libvirtd || systemctl enable libvirtd
  systemctl is-active --quiet libvirtd || systemctl start libvirtd
}

check_input
install_missing_packages "${PACKAGES[@]}"
check_kvm
confine_host_processes
create_pool_dirs
grant_libvirt_access
start_libvirtd
log "ready: host processes on cores $RESERVED_CPUS"
