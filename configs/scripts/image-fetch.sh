#!/usr/bin/env bash
# Fetch the base cloud image onto a hypervisor, check it, and import it into the control-plane pool
# as VOLUME. The volume name is derived from the image's identity (configs/vm.py), so a new image
# becomes a new volume and the backing file of running VMs is never replaced. Idempotent.
#
# The image is checked one of two ways, and nothing is imported unless the check passes:
#   IMAGE_SHA256 given: the download must have that digest (vmImage.sha256).
#   otherwise: the publisher's IMAGE_SUMS_URL (SHA256SUMS) and its detached signature
#   IMAGE_SUMS_URL.gpg are fetched, gpgv verifies the signature against the key pinned below, and
#   the download must have the digest of the signed line for IMAGE_NAME. The verified SHA256SUMS
#   and its signature stay beside the volume's marker, so the check can be repeated on the host.
#
# Environment: IMAGE_URL, POOL (libvirt pool name), POOL_PATH, VOLUME, and IMAGE_SHA256 or
# IMAGE_SUMS_URL + IMAGE_NAME; HAKUBE_ROOT. HAKUBE_TEST_KEYRING (tests only, hakube never sets it):
# a gpgv keyring file used in place of the pinned key.
set -euo pipefail

script_name="image-fetch"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${IMAGE_URL:?}" "${POOL:?}" "${POOL_PATH:?}" "${VOLUME:?}"
expected="${IMAGE_SHA256:-}"
if [[ -z "$expected" ]]; then
  : "${IMAGE_SUMS_URL:?IMAGE_SHA256 or IMAGE_SUMS_URL is required}" "${IMAGE_NAME:?}"
fi
images="$root/var/lib/hakube/images"
marker="$images/$VOLUME.sha256"

refuse() { fail "$*; nothing imported"; }

# Ubuntu's cloud image signing key, "UEC Image Automatic Signing Key <cdimage@ubuntu.com>" (rsa4096,
# 2009-09-15), fingerprint D2EB 4462 6FDD C30B 513D  5BB7 1A5D 6C4C 7DB8 7C81 as Canonical publishes
# it (ubuntu-cloud-docs: public-images-how-to/verify-image-checksum). The key block is the one
# keyserver.ubuntu.com serves, as ValveSoftware/steam-runtime pins it (ubuntu-cloud-key.txt);
# tests/scripts/test_image_fetch.py checks its fingerprint against topology.model's with gpg.
pinned_key() {
  cat <<'KEY'
-----BEGIN PGP PUBLIC KEY BLOCK-----

mQINBEqwKTUBEAC8V01JGfeYVVlwlcr0dmwF8n+We/lbxwArjR/gZlH7/MJEZnALQHUrDTpD
3SkfbsjQgeNt8eS3Jyzoc2r3t2nos4rXPH4kIzAvtqslz6Ns4ZYjoHVkVC2oV8vYbxER+3/l
DjTWVII7omtDVvqH33QlqYZ8+bQbs21lZb2ROJIQCiH0YzaqYR0I2SEykBL873V0ygdyW/mC
MwniXTLUyGAUV4/28NOzw/6LGvJElJe4UqwQxl/aXtPIJjPka8LA8+nDi5/u6WEgDWgBhLEH
vQG1BNdttm3WCjbu4zS3mNfNBidTamZfOaMJUZVYxhOB5kNQqyR4eYqFK/U+305eLrZ05oca
dsmcQWkHQVbgt+g4yyFNl56N5AirkFjVtfArkUJfINGgJ7gkSeyqTJK24f33vsIpPwRQ5eFn
7H4PwGc0Piym73YLJnlR94LNEG0ceOJ7u1r+WuaesIj+lKIZsG/rRLf7besaMCCtPcimVgEA
mBoIdpTpdP3aa54w/dvfSwW47mGY14G5PBk/0MDy2Y5HOeXat3RXpGZZFh7zbwSQ93RhYH3b
NPNd5lMu3ZRkYX19FWxoLCi5lx4K3flYhiolZ5i4KxJCoGRobsKjm74Xv2QlvCXYyAk5BnAQ
Csu5hKZ1sOhQADCcKz1Zbg8JRc3vmelaJ/VFvHTzs4hJTUvOowARAQABtDRVRUMgSW1hZ2Ug
QXV0b21hdGljIFNpZ25pbmcgS2V5IDxjZGltYWdlQHVidW50dS5jb20+iEYEEBEIAAYFAkqw
LTMACgkQKN6ufymYLloF0gCfc2z3/GY9KvjqSMWg/a1OSuepzqcAnjEC4jNT7UU9c5dS1lFu
4cB2ztjhiQIcBBABCAAGBQJKsC0nAAoJEFdZ81ABqkpkCRoQALzKtTFFBiq5LAhAuujgvFNI
2bIs2bSXJl4mxlxD71XiCOH5EMy1BSTzSwAjvZpBrSZY/qVBerV9jLSuFpEEzKklkwjSHFvI
wsD5KDS8MxvPS7V6hEmdK/dly00M8PaijuGcCo0mfkMI2BVM3IqF0icbSDHR2N8NF8Oq3/SU
Jz9ht3uOXjvDZ3xOLDNgo6u79PPQaQnn4jEF9x8Scm1j05Kk/zGXnRPmjLmjnPBKFNZaQKz+
DFFZFyfnWsnozVi2pF7NElPSZntpsaDhtZFdw8reDWO3s0lK7cG87b/EEKlCpoh6Z2PaKBTc
5HVh7G4gj+U+gRjnDeTSUbhYaVISZp1BgPH3zAxoQ2QhL34WuBRezJ7MbqvdtOO1nPmr2nzR
3CodNlqnm0sFYMjJdFZaZpLT9q+DN2D4SY9ciw4Cy4/jxDCZWJEVdk/UOcKN6PQnZ1L3m0DQ
f1BOvr4CF9b0wz9CoeZFDPx+UnheyVpG3esYMvJQS4EoryRozCDWtWvMjGNurVUTXKTnkr68
aWkXkbceA2MdxqLzwt9FjK6gsHkDKu1nRLoYFowuLhzMYkfwRADmPxGXY5qcD+IlY6OrpIu8
mIwRRAV5JA3UeHhnb7aYOdOCpLDS87foGgeP/Cx9qYwtREK0Cty3LWDiIITwkJ1aAsDOritM
MQR/gfeFckvTiQI3BBMBAgAhAhsDAh4BAheABQJKsColBQsJCAcDBRUKCQgLBRYCAwEAAAoJ
EBpdbEx9uHyBLicP/jXjfLhs255oT8gmvBXS9WDGSdpPiaMxd0CHEyHuT/XdWsoUUYXAPAti
8Fyk2K99mze+n4SLCRRJhxqYlcpVy2icc41/VkKI9d/pF4t54RM5TledYpKVV7xTgoUHZpuL
2mWzaT61MzRAxUqqaU42/xSLxLt/noryPHo57IghJXbAcmgLhFT0fZmtDy9cD4IBvurZF6cR
uMJXjxZmssntMHsFZl4PEC3oR/WgJA37OrjMVej9r+JA909vr5K/UO+P2gWYOH/2CnGDlaTu
72wUrLf6QV5jMyKc6+G7fw5bTJd9lE8Km2H+4z9e+t7IOv9oxojvESu27exD4LU7SjzZloYn
mlTCsdHwgSJVnf+lqXoZeUNT9Tmku8VzwCoExTwo9exaJUHeO8ABkfsJVmry40ovzQAHh427
+6NpxgkWErVocnm54LPIQucZYJrg08s/azRzCjlsYChsaWMvGlMZQo52MuLvETHVPtSggP7s
LeIOlS+8tO1ykSJY65j8AHYBV6hb9EOjWmqpx33GXn8AyCPiMs9/pmeOI0V6YMm6HCLAwZb+
rRS6gcyt9dlWyLU0QLlpmwHSOVJMv2rnNCUtz6pb8y/o9AN2Z48RpH9C9cfv4dAfbtYn7uTd
+M3gk4xyURREg2xuDnraYFs6cZ60/bSy63GxTyi/cCc0S57GgtOK
=9+Z6
-----END PGP PUBLIC KEY BLOCK-----
KEY
}

# ASCII armor to the binary keyring gpgv reads: drop the header block, the checksum and END lines.
dearmor() { sed -e '1,/^$/d' -e '/^=/,$d' | base64 -d; }

fetch() {  # URL FILE WHAT
  curl --fail --silent --show-error --location --retry 3 --max-time 1800 --output "$2" "$1" 2>"$2.err" \
    || refuse "cannot fetch $3 $1: $(tail -n 1 "$2.err")"
}

# The digest the signed SHA256SUMS gives IMAGE_NAME ("<hex> *<name>" or "<hex>  <name>").
signed_digest() {
  local sums="$work/SHA256SUMS" keyring="${HAKUBE_TEST_KEYRING:-$work/pinned.gpg}" verdict digests
  fetch "$IMAGE_SUMS_URL" "$sums" "the checksum list"
  fetch "$IMAGE_SUMS_URL.gpg" "$sums.gpg" "the signature of"
  [[ -n "${HAKUBE_TEST_KEYRING:-}" ]] || pinned_key | dearmor >"$keyring"
  if ! verdict="$(gpgv --homedir "$work" --keyring "$keyring" "$sums.gpg" "$sums" 2>&1)"; then
    refuse "$IMAGE_SUMS_URL.gpg is not a good signature of $IMAGE_SUMS_URL by the pinned Ubuntu cloud image key" \
      "(gpgv: $(sed -e '/Signature made/d; /using [A-Z]* key/d' -e 's/^gpgv: *//' <<<"$verdict" | paste -sd ' ' -))"
  fi
  digests="$(awk -v name="$IMAGE_NAME" 'NF == 2 && ($2 == name || $2 == "*" name) { print tolower($1) }' "$sums" \
    | sort -u)"
  [[ -n "$digests" ]] || refuse "the signed $IMAGE_SUMS_URL has no line for $IMAGE_NAME"
  [[ "$digests" =~ ^[0-9a-f]{64}$ ]] \
    || refuse "the signed $IMAGE_SUMS_URL gives $IMAGE_NAME no single SHA-256: $(tr '\n' ' ' <<<"$digests")"
  printf '%s\n' "$digests"
}

if virsh -q vol-info --pool "$POOL" "$VOLUME" >/dev/null 2>&1 && [[ -f "$marker" ]] \
  && { [[ -z "$expected" ]] || [[ "$(cat "$marker")" == "$expected" ]]; }; then
  log "$VOLUME already in pool $POOL"
  exit 0
fi

mkdir -p "$images"
work="$(mktemp -d "$images/.fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT
if [[ -n "$expected" ]]; then
  vouched="vmImage.sha256"
else
  expected="$(signed_digest)"
  vouched="the signed $IMAGE_SUMS_URL"
fi
download="$work/image"
fetch "$IMAGE_URL" "$download" "the image"
actual="$(sha256sum "$download" | cut -d' ' -f1)"
[[ "$actual" == "$expected" ]] || refuse "$IMAGE_URL has sha256 $actual, but $vouched says $expected"

size="$(stat -c %s "$download")"
virsh -q vol-info --pool "$POOL" "$VOLUME" >/dev/null 2>&1 \
  || virsh -q vol-create-as "$POOL" "$VOLUME" "$size" --format qcow2 >/dev/null
virsh -q vol-upload --pool "$POOL" "$VOLUME" "$download"
if [[ -f "$work/SHA256SUMS" ]]; then
  mv -f "$work/SHA256SUMS" "$images/$VOLUME.SHA256SUMS"
  mv -f "$work/SHA256SUMS.gpg" "$images/$VOLUME.SHA256SUMS.gpg"
fi
printf '%s\n' "$expected" >"$marker"
log "imported $VOLUME ($size bytes, sha256 $expected from $vouched) into pool $POOL at $POOL_PATH"
