#!/usr/bin/env bash
# Print a new secretbox key for kube-apiserver's EncryptionConfiguration: base64 of 32 bytes from
# the kernel's random source, on stdout only (the step keeps its stdout as a Pulumi secret and never
# logs it). Run once per key name: the step ignores every later change (components/apiserver.py).
set -euo pipefail

script_name="encryption-key"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

key="$(head -c 32 /dev/urandom | base64 -w0)"
[[ "$(printf '%s' "$key" | base64 -d | wc -c)" -eq 32 ]] || fail "could not read 32 random bytes"
printf '%s\n' "$key"
log "generated a 32-byte key"
