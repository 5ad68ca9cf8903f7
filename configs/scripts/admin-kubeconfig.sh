#!/usr/bin/env bash
# Print the cluster's admin kubeconfig (run on the first control-plane node). Its server is the
# controlPlaneEndpoint (VIP:port) kubeadm wrote; the caller keeps stdout as a Pulumi secret.
#
# Environment: HAKUBE_ROOT (prefix for every path; tests point it at a scratch root).
set -euo pipefail

config="${HAKUBE_ROOT:-}/etc/kubernetes/admin.conf"
if [[ ! -s "$config" ]]; then
  echo "admin-kubeconfig: $config is missing: has kubeadm init run on this node?" >&2
  exit 1
fi
cat "$config"
