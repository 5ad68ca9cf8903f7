#!/usr/bin/env bash
# Fetch the base cloud image onto a hypervisor, verify its SHA-256, and import it into the
# control-plane pool as VOLUME. The volume name carries the checksum, so a new image becomes a new
# volume and the backing file of running VMs is never replaced. Idempotent.
#
# Environment: IMAGE_URL, IMAGE_SHA256, POOL (libvirt pool name), POOL_PATH, VOLUME; HAKUBE_ROOT.
set -euo pipefail

: "${IMAGE_URL:?}" "${IMAGE_SHA256:?}" "${POOL:?}" "${POOL_PATH:?}" "${VOLUME:?}"
root="${HAKUBE_ROOT:-}"
marker="$root/var/lib/hakube/images/$VOLUME.sha256"

if virsh -q vol-info --pool "$POOL" "$VOLUME" >/dev/null 2>&1 && [[ -f "$marker" ]] \
  && [[ "$(cat "$marker")" == "$IMAGE_SHA256" ]]; then
  echo "image-fetch: $VOLUME already in pool $POOL"
  exit 0
fi

mkdir -p "$root/var/lib/hakube/images"
download="$(mktemp "$root/var/lib/hakube/images/.download.XXXXXX")"
trap 'rm -f "$download"' EXIT
curl --fail --silent --show-error --location --retry 3 --max-time 1800 --output "$download" "$IMAGE_URL"
actual="$(sha256sum "$download" | cut -d' ' -f1)"
if [[ "$actual" != "$IMAGE_SHA256" ]]; then
  echo "image-fetch: $IMAGE_URL has sha256 $actual, expected $IMAGE_SHA256; nothing imported" >&2
  exit 1
fi
size="$(stat -c %s "$download")"
virsh -q vol-info --pool "$POOL" "$VOLUME" >/dev/null 2>&1 \
  || virsh -q vol-create-as "$POOL" "$VOLUME" "$size" --format qcow2 >/dev/null
virsh -q vol-upload --pool "$POOL" "$VOLUME" "$download"
printf '%s\n' "$IMAGE_SHA256" >"$marker"
echo "image-fetch: imported $VOLUME ($size bytes) into pool $POOL at $POOL_PATH"
