#!/usr/bin/env bash
# Keep the kubelet's CPU manager settings (cpuManagerPolicy, reservedSystemCPUs) as the node's
# kubelet configuration on stdin (configs/kubeadm.py kubelet_config) says.
# The kubelet refuses to start when its checkpoint /var/lib/kubelet/cpu_manager_state was written
# under another policy or another reserved set, so a change is: stop the kubelet, update the two
# fields, remove the checkpoint, start the kubelet. Running pods keep running meanwhile.
# Only those two top-level fields are edited in the file kubeadm wrote: the rest of it (resolvConf
# detected on the host, kubeadm's defaults) stays as kubeadm made it. Without a file (kubeadm has
# not run yet) the configuration on stdin is written whole; kubeadm init/join starts the kubelet.
# Idempotent: with both fields already as wanted, nothing is written or restarted.
#
# Environment:
#   KUBELET_RECORD  read the wanted configuration from this file (hakube's record, placed just
#                   before by file-set.sh) instead of stdin; without a kubelet file there is then
#                   nothing to do: the node has not joined, and kubeadm join writes the file.
#   HAKUBE_ROOT     prefix for every path; tests point it at a scratch root.
set -euo pipefail

root="${HAKUBE_ROOT:-}"
config="$root/var/lib/kubelet/config.yaml"
state="$root/var/lib/kubelet/cpu_manager_state"

log() { printf 'kubelet-cpu-manager: %s\n' "$*"; }
fail() {
  printf 'kubelet-cpu-manager: %s\n' "$*" >&2
  exit 1
}
# A top-level scalar field of a kubelet configuration, without quotes.
field() { sed -n -E "s/^$1:[[:space:]]*//p" | head -n 1 | tr -d "\"' "; }

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
  mkdir -p "$(dirname "$config")"
  printf '%s\n' "$wanted" >"$config.hakube-tmp"
  mv -f "$config.hakube-tmp" "$config"
  log "wrote ${config#"$root"} (policy $policy, reserved CPUs $reserved); kubeadm starts the kubelet"
  exit 0
fi

current_policy="$(field cpuManagerPolicy <"$config")"
current_reserved="$(field reservedSystemCPUs <"$config")"
if [[ "$current_policy" == "$policy" ]] && [[ "$current_reserved" == "$reserved" ]]; then
  log "unchanged (policy $policy, reserved CPUs $reserved)"
  exit 0
fi

# Both fields rewritten in place (or appended); other lines untouched.
trap 'rm -f "$config.hakube-tmp"' EXIT
updated="$(sed -E '/^(cpuManagerPolicy|reservedSystemCPUs):/d' "$config")"
printf '%s\ncpuManagerPolicy: %s\nreservedSystemCPUs: "%s"\n' "$updated" "$policy" "$reserved" >"$config.hakube-tmp"

systemctl stop kubelet
mv -f "$config.hakube-tmp" "$config"
rm -f "$state"
systemctl start kubelet
log "CPU manager changed (policy ${current_policy:-none} -> $policy, reserved CPUs ${current_reserved:-none} ->" \
  "$reserved): checkpoint removed, kubelet restarted"
