#!/usr/bin/env bash
# Fresh join credentials, made on the first control-plane node right before one join: a bootstrap
# token with a short TTL, the CA's public key hash, and (control-plane joins) a fresh certificate
# key from `kubeadm init phase upload-certs --upload-certs`, which re-uploads the control-plane
# certificates encrypted with it (kubeadm deletes them again after two hours).
# Prints ONE JSON line on stdout, {"token": ..., "caCertHash": ..., "certificateKey": ...}
# (certificateKey only with CONTROL_PLANE=true): the caller keeps it as a secret.
# Not idempotent by design: every run makes new credentials; old tokens simply expire.
#
# Environment:
#   CONTROL_PLANE         true for a control-plane join: also a certificate key (default false)
#   TOKEN_TTL             bootstrap token lifetime (default 30m)
#   NODE_NAME             the joining node, for the token's description (optional)
#   HAKUBE_ROOT           prefix for every path (tests point it at a scratch root)
set -euo pipefail

script_name="kubeadm-token"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

admin="$admin_kubeconfig"
ca="$root/etc/kubernetes/pki/ca.crt"
ttl="${TOKEN_TTL:-30m}"

[[ -s "$admin" ]] || fail "${admin#"$root"} is missing: run this on the first control-plane node after init"
[[ -s "$ca" ]] || fail "${ca#"$root"} is missing"

# kubeadm's stdout stays in variables (never argv, never a log); its stderr is passed on redacted.
token="$(kubeadm token create --ttl "$ttl" --description "hakube join${NODE_NAME:+ of $NODE_NAME}" \
  --kubeconfig "$admin" 2> >(redact >&2))" || fail "kubeadm token create failed"
token="$(tail -n 1 <<<"$token")"
[[ "$token" =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]] || fail "kubeadm token create printed no token"

# The discovery hash: SHA-256 of the CA certificate's DER-encoded public key (SubjectPublicKeyInfo).
hash="$(openssl x509 -in "$ca" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum)"
hash="sha256:${hash%% *}"
[[ "$hash" =~ ^sha256:[a-f0-9]{64}$ ]] || fail "could not hash the CA's public key"

key_field=""
if [[ "${CONTROL_PLANE:-false}" == true ]]; then
  out="$(kubeadm init phase upload-certs --upload-certs --kubeconfig "$admin" 2> >(redact >&2))" ||
    fail "kubeadm init phase upload-certs failed"
  key="$(grep -E '^[a-f0-9]{64}$' <<<"$out" | tail -n 1 || true)"
  [[ -n "$key" ]] || fail "kubeadm init phase upload-certs printed no certificate key"
  key_field=",\"certificateKey\":\"$key\""
fi

# printf is a builtin: the values never appear in any process's argv.
printf '{"token":"%s","caCertHash":"%s"%s}\n' "$token" "$hash" "$key_field"
