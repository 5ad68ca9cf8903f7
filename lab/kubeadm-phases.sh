#!/usr/bin/env bash
# kubeadm's init phases for one control-plane node, run by lab/controlplane.py inside
# `unshare --mount --net --propagation private` (a mount namespace of its own, no network).
# /etc, /var/lib and /run become overlays whose upper layers sit on a tmpfs of this namespace, so
# nothing of the machine's is ever written; /etc/kubernetes, /var/lib/kubelet and /var/lib/etcd are
# hidden (whiteouts in the upper layer: a fresh node), then OUT/etc/kubernetes is bound over
# /etc/kubernetes, so kubeadm's certificates, kubeconfigs and manifests land in OUT. Every other write
# shows up as a change in an upper layer: listed before and after the phases into OUT/.writes-before
# and OUT/.writes-after (one line per entry: path, type, mode, size, mtime).
#
# Arguments: OUT CONFIG KUBEADM PHASE... (CONFIG is the --config path as the node sees it; each PHASE is
# one argument such as "certs all"). kubeadm's output goes to OUT/kubeadm.log, phase timings to OUT/times.
set -euo pipefail

out="$1" config="$2" kubeadm="$3"
shift 3
scratch="$out/.namespace"

mkdir -p "$scratch"
mount -t tmpfs hakube-scratch "$scratch"
for dir in /etc /var/lib /run; do
  layer="${dir//\//_}"
  mkdir -p "$scratch/upper$layer" "$scratch/work$layer"
  mount -t overlay hakube-overlay -o "lowerdir=$dir,upperdir=$scratch/upper$layer,workdir=$scratch/work$layer" "$dir"
done
rm -rf /etc/kubernetes /var/lib/kubelet /var/lib/etcd
mkdir /etc/kubernetes
mount --bind "$out/etc/kubernetes" /etc/kubernetes

snapshot() {
  find "$scratch"/upper_* -path "$scratch/upper_etc/kubernetes" -prune -o -printf '%p %y %m %s %T@\n' | sort
}
snapshot >"$out/.writes-before"
: >"$out/times"
for phase in "$@"; do
  start="$EPOCHREALTIME"
  # shellcheck disable=SC2086  # a phase is several words of kubeadm's command line ("certs all")
  if ! "$kubeadm" init phase $phase --config "$config" >>"$out/kubeadm.log" 2>&1; then
    echo "kubeadm init phase $phase --config $config failed (see $out/kubeadm.log)" >&2
    exit 1
  fi
  printf '%s\t%s\t%s\n' "$phase" "$start" "$EPOCHREALTIME" >>"$out/times"
done
snapshot >"$out/.writes-after"
