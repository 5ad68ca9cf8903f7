#!/usr/bin/env bash
# Print the cluster's admin kubeconfig (run on the first control-plane node). Its server is the
# controlPlaneEndpoint (VIP:port) kubeadm wrote; the caller keeps stdout as a Pulumi secret.
#
# Environment: HAKUBE_ROOT (prefix for every path; tests point it at a scratch root).
set -euo pipefail

script_name="admin-kubeconfig"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

config="$admin_kubeconfig"
if [[ ! -s "$config" ]]; then
  fail "$config is missing: has kubeadm init run on this node?"
fi
cat "$config"
