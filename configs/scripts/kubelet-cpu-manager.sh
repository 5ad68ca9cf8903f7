#!/usr/bin/env bash
# Keep the kubelet's CPU and Memory Manager settings (cpuManagerPolicy, cpuManagerPolicyOptions,
# reservedSystemCPUs; memoryManagerPolicy, reservedMemory) as the node's kubelet configuration on
# stdin (configs/kubeadm.py kubelet_config) says.
# The kubelet refuses to start when its checkpoint (/var/lib/kubelet/cpu_manager_state,
# memory_manager_state) was written under other settings, so a change is: stop the kubelet, update
# the fields, remove the checkpoint of each manager whose fields changed, start the kubelet. Running
# pods keep running meanwhile.
# Only those top-level fields (each with the lines nested under it) are edited in the file kubeadm
# wrote: the rest of it (resolvConf detected on the host, kubeadm's defaults) stays as kubeadm made
# it. Without a file (kubeadm has not run yet) the configuration on stdin is written whole; kubeadm
# init/join starts the kubelet.
# Idempotent: with the fields already as wanted, nothing is written or restarted. Fields compare
# with quotes dropped and keys in sorted order, so kubeadm's rendering of a value (sigs.k8s.io/yaml)
# equals hakube's (PyYAML).
#
# Environment:
#   KUBELET_RECORD  read the wanted configuration from this file (hakube's record, placed just
#                   before by file-set.sh) instead of stdin; without a kubelet file there is then
#                   nothing to do: the node has not joined, and kubeadm join writes the file.
#   HAKUBE_ROOT     prefix for every path; tests point it at a scratch root.
set -euo pipefail

script_name="kubelet-cpu-manager"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

config="$root/var/lib/kubelet/config.yaml"
cpu_state="$root/var/lib/kubelet/cpu_manager_state"
memory_state="$root/var/lib/kubelet/memory_manager_state"
# The managed top-level keys, by the checkpoint a change of them invalidates.
CPU_KEYS="cpuManagerPolicy|cpuManagerPolicyOptions|reservedSystemCPUs"
MEMORY_KEYS="memoryManagerPolicy|reservedMemory"

# A top-level scalar field of a kubelet configuration, without quotes.
field() { sed -n -E "s/^$1:[[:space:]]*//p" | head -n 1 | tr -d "\"' "; }
# The top-level fields matching $1 of a configuration on stdin, each with the lines nested under it
# (indented, or a list item at column 0 as both YAML libraries write them).
blocks() { awk -v keys="^($1):" '/^[^[:space:]#-]/ {keep = ($0 ~ keys)} keep'; }
# Everything but those fields.
without() { awk -v keys="^($1):" '/^[^[:space:]#-]/ {drop = ($0 ~ keys)} !drop'; }
# The fields $1 as comparable text: one line per field, sorted, without quotes or trailing blanks.
comparable() {
  blocks "$1" | awk '/^[^[:space:]#-]/ {if (out != "") print out; out = ""}
    {line = $0; gsub(/["\047]/, "", line); sub(/[[:space:]]+$/, "", line); out = out line "\037"}
    END {if (out != "") print out}' | sort
}

origin="stdin"
if [[ -n "${KUBELET_RECORD:-}" ]]; then
  if [[ ! -f "$config" ]]; then
    log "no ${config#"$root"} yet: kubeadm writes it when the node joins"
    exit 0
  fi
  origin="$KUBELET_RECORD"
  [[ -f "$root$KUBELET_RECORD" ]] || fail "no kubelet configuration at $origin"
  wanted="$(cat "$root$KUBELET_RECORD")"
else
  wanted="$(cat)"
fi
[[ -n "$wanted" ]] || fail "no kubelet configuration on $origin"
policy="$(field cpuManagerPolicy <<<"$wanted")"
reserved="$(field reservedSystemCPUs <<<"$wanted")"
[[ "$policy" =~ ^[a-z]+$ ]] || fail "the configuration on $origin has no cpuManagerPolicy"
[[ "$reserved" =~ ^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$ ]] ||
  fail "the configuration on $origin has no reservedSystemCPUs cpuset"

if [[ ! -f "$config" ]]; then
  printf '%s\n' "$wanted" | atomic_write "$config"
  log "wrote ${config#"$root"} (policy $policy, reserved CPUs $reserved); kubeadm starts the kubelet"
  exit 0
fi

current_policy="$(field cpuManagerPolicy <"$config")"
current_reserved="$(field reservedSystemCPUs <"$config")"
memory_policy="$(field memoryManagerPolicy <<<"$wanted")"
current_memory_policy="$(field memoryManagerPolicy <"$config")"
cpu_changed=false memory_changed=false
[[ "$(comparable "$CPU_KEYS" <<<"$wanted")" == "$(comparable "$CPU_KEYS" <"$config")" ]] || cpu_changed=true
[[ "$(comparable "$MEMORY_KEYS" <<<"$wanted")" == "$(comparable "$MEMORY_KEYS" <"$config")" ]] || memory_changed=true
if [[ "$cpu_changed" == false && "$memory_changed" == false ]]; then
  log "unchanged (policy $policy, reserved CPUs $reserved, memory manager ${memory_policy:-None})"
  exit 0
fi

# The managed fields replaced (or appended) as the wanted configuration has them; other lines untouched.
trap 'rm -f "$config.hakube-tmp"' EXIT
{
  without "$CPU_KEYS|$MEMORY_KEYS" <"$config"
  blocks "$CPU_KEYS|$MEMORY_KEYS" <<<"$wanted"
} >"$config.hakube-tmp"

systemctl stop kubelet
mv -f "$config.hakube-tmp" "$config"
changes=()
if [[ "$cpu_changed" == true ]]; then
  rm -f "$cpu_state"
  changes+=("CPU manager changed (policy ${current_policy:-none} -> $policy, reserved CPUs ${current_reserved:-none} -> $reserved)")
fi
if [[ "$memory_changed" == true ]]; then
  rm -f "$memory_state"
  changes+=("Memory Manager changed (policy ${current_memory_policy:-None} -> ${memory_policy:-None})")
fi
systemctl start kubelet
summary="$(printf '%s; ' "${changes[@]}")"
log "${summary%; }: checkpoint removed, kubelet restarted"
