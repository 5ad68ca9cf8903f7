"""Secrets encryption at rest: the provider order a stack asks for, the key values it gives, and the
one rule that needs the previous deployment: a key rotation goes one safe step per `pulumi up`.

kube-apiserver writes with the first provider of its EncryptionConfiguration and reads with any. The
control-plane nodes take a new configuration one at a time, so during a rollout some apiservers run
the old one and some the new: whatever a restarted one writes, the others must already read. Hence
(each step one `pulumi up`, components/apiserver.py rolls it out and then rewrites every Secret):
  1. add:     [old] -> [old, new]   every node learns to read `new`
  2. promote: [old, new] -> [new, old]   writes use `new`; every Secret is rewritten with it
  3. retire:  [new, old] -> [new]   nothing is encrypted with `old` any more
The deployed order is the stack's own `encryptionKeys` output (components/program.py), with a
fingerprint of each key value, so a changed value under an unchanged name is refused too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from topology.load import TopologyError, render_loc
from topology.model import IDENTITY, Cluster

KEY_BYTES = 32  # secretbox (XSalsa20-Poly1305) takes exactly 32 bytes
# Stands for the fingerprint of a key the first control-plane node generated: its value is only
# known once generated (and never changes: components/apiserver.py ignores every change of it).
GENERATED = "generated"
KEYS_CONFIG = "encryptionKeys"  # hakube:encryptionKeys.<name>: the key values a stack gives
OUTPUT = "encryptionKeys"  # the stack output naming the deployed key order
LOC = ("encryption", "keys")


def providers(cluster: Cluster) -> list[str]:
    """The provider order the stack asks for: key names, the write key first; [identity] when off."""
    return list(cluster.encryption.keys) if cluster.encryption.enabled else [IDENTITY]


def keys_needed(cluster: Cluster) -> list[str]:
    """The names that need a key value (every provider but identity)."""
    return [name for name in providers(cluster) if name != IDENTITY]


def key_problem(value: str) -> str | None:
    """Why `value` is no secretbox key (never quoting it), or None."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return "is not base64 (e.g. `head -c 32 /dev/urandom | base64`)"
    if len(raw) != KEY_BYTES:
        return f"decodes to {len(raw)} bytes; a secretbox key is {KEY_BYTES} bytes (`head -c 32 /dev/urandom | base64`)"
    return None


def fingerprint(value: str) -> str:
    """A non-secret name for a key value: 16 hex digits of a SHA-256 (the key is 256 random bits)."""
    return hashlib.sha256(b"hakube-encryption-key\0" + value.strip().encode()).hexdigest()[:16]


def check_given_keys(given: Mapping[str, str]) -> list[str]:
    """Path-named problems of the key values in hakube:encryptionKeys (a mapping name -> value)."""
    problems = []
    for name, value in sorted(given.items()):
        where = f"hakube:{KEYS_CONFIG}.{name}"
        if name == IDENTITY:
            problems.append(f"{where}: identity stores plain text and takes no key")
        elif not isinstance(value, str) or (reason := key_problem(value)) is not None:
            problems.append(f"{where}: {reason if isinstance(value, str) else 'must be a string'}")
    return problems


def deployed_keys(cluster: Cluster, given: Mapping[str, str]) -> list[dict[str, str]]:
    """What the stack exports as `encryptionKeys`: the provider order with each key's fingerprint."""
    return [{"name": name, "fingerprint": "" if name == IDENTITY else
             fingerprint(given[name]) if name in given else GENERATED}
            for name in providers(cluster)]


def _order(value: Any) -> list[tuple[str, str]] | None:
    """The previous deployment's `encryptionKeys` as (name, fingerprint) pairs; None if unreadable."""
    if not isinstance(value, list):
        return None
    out = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            return None
        out.append((item["name"], str(item.get("fingerprint", ""))))
    return out


def previous_keys(outputs: Mapping[str, Any]) -> Any:
    """The deployed `encryptionKeys` from the stack's previous outputs: None for a stack never
    deployed; plain text ([identity]) for one deployed before hakube encrypted Secrets."""
    if not outputs:
        return None
    return outputs.get(OUTPUT, [{"name": IDENTITY, "fingerprint": ""}])


def check_rotation(previous: Any, new: Sequence[Mapping[str, str]]) -> list[str]:
    """Why going from the deployed `encryptionKeys` (`previous`; None: never deployed) to `new` in
    one `pulumi up` is unsafe, as messages; [] when it is one of the steps above (or no change)."""
    if previous is None:
        return []  # a new cluster: the configuration is in place before the first apiserver starts
    old = _order(previous)
    if old is None:
        return ["the deployed encryptionKeys output is unreadable; cannot check the key change"]
    old_names, old_prints = [name for name, _ in old], dict(old)
    new_order = [(item["name"], item["fingerprint"]) for item in new]
    new_names = [name for name, _ in new_order]
    problems = []
    for name, print_ in new_order:
        was = old_prints.get(name)
        if was is not None and was != print_:
            problems.append(f"{name}: its value changed; what it encrypted could no longer be read. Give a"
                            " new value under a new name, and rotate")
    readable = {*old_names, IDENTITY}
    write = new_names[0]
    if write != old_names[0] and write not in readable:
        problems.append(f"{write}: a new key cannot be the write key at once (apiservers not yet restarted"
                        f" could not read what it encrypts); first add it after {old_names[0]!r}, then move"
                        " it first in a later `pulumi up`")
    dropped = [name for name in old_names if name not in new_names and name != IDENTITY]
    if write != old_names[0] and dropped:
        problems.append(f"{', '.join(dropped)}: a key cannot be dropped while the write key changes (Secrets are"
                        " rewritten with the new one only after this rollout); drop it in a later `pulumi up`")
    elif old_names[0] in dropped:
        problems.append(f"{old_names[0]}: the write key cannot be dropped; move another key first (every"
                        " Secret is then rewritten with it), then drop it")
    return problems


def refuse_unsafe_rotation(previous: Any, cluster: Cluster, given: Mapping[str, str]) -> None:
    """Raise TopologyError (path-named lines) for bad key values or an unsafe change of key order."""
    lines = check_given_keys(given)
    if not lines:
        loc = render_loc(LOC)
        lines = [f"{loc}: {message}" for message in check_rotation(previous, deployed_keys(cluster, given))]
    if lines:
        raise TopologyError(lines)
