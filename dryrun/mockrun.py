"""Run the real hakube program (`__main__.py`) in-process under Pulumi mocks and record every
resource it registers: type, name, parent, dependencies, provider and inputs."""

from __future__ import annotations

import base64
import gc
import json
import runpy
import secrets as pysecrets
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi.runtime.resource as sdk_resource
from pulumi.runtime import mocks as pmocks
from pulumi.runtime import rpc
from pulumi.runtime.proto import source_pb2
from pulumi.runtime.sync_await import _sync_await

from dryrun.paths import REPO
from topology import TopologyError, encryption, load_cluster

SECRET_MARK = "[secret]"
READ_STACK_OUTPUTS = "pulumi:pulumi:readStackOutputs"  # components/previous.py's (tests hold them equal)


@dataclass
class Record:
    urn: str
    type: str
    name: str
    custom: bool
    parent: str | None
    dependencies: list[str]
    provider: str | None
    inputs: dict[str, Any]
    ignore_changes: list[str] = field(default_factory=list)
    # What the policy engine also sees (dryrun/policy_check.py): secret outputs and, per input,
    # the resources it was computed from.
    additional_secret_outputs: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    # A remote component (helm.v4.Chart, yaml.v2.ConfigFile): its provider registers its children,
    # which mocks never see, so the record stands for them.
    remote: bool = False


@dataclass
class MockRun:
    records: list[Record] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def by_urn(self) -> dict[str, Record]:
        return {r.urn: r for r in self.records}


class _Mocks(pmocks.Mocks):
    """Answers like a provider would: echo the inputs, plus the outputs the program reads."""

    def __init__(self, recorder: _RecordingMonitor) -> None:
        self.recorder = recorder
        self.previous_outputs: dict[str, Any] = {}

    def new_resource(self, args: pmocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        self.recorder.note(args)
        state = dict(args.inputs)
        if args.typ == "command:remote:Command":
            state.setdefault("stdout", fake_stdout(args.name))
            state.setdefault("stderr", "")
        return (f"{args.name}-id" if args.custom else None), state

    def call(self, args: pmocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token == READ_STACK_OUTPUTS:
            # The program's read of its own stack's last outputs (components/previous.py).
            return {"name": args.args.get("name"), "outputs": self.previous_outputs, "secretOutputNames": []}, []
        return {}, []


def fake_stdout(name: str) -> str:
    """What a host script would print, for the few steps whose stdout the program parses."""
    if name.endswith("-credentials"):
        return json.dumps({"token": "abcdef.0123456789abcdef", "caCertHash": "sha256:" + "0" * 64,
                           "certificateKey": "0" * 64})
    if name.endswith("-smoke-check"):
        return json.dumps({"ok": True, "dryRun": "the smoke check reaches the nodes on a real cluster only"})
    if name.endswith("-certs"):
        return json.dumps({"node": name.removesuffix("-certs"), "renewed": False,
                           "dryRun": "kubeadm certs check-expiration runs on a real cluster only"})
    if name.endswith("-kubeconfig"):
        return "apiVersion: v1\nkind: Config\nclusters: []\n"
    if name.startswith("encryption-key-"):
        # A key shaped like encryption-key.sh's (32 bytes, base64), freshly random: a throwaway.
        return base64.b64encode(pysecrets.token_bytes(32)).decode() + "\n"
    return ""


class _RecordingMonitor(pmocks.MockMonitor):
    def __init__(self) -> None:
        super().__init__(_Mocks(self))
        self.run = MockRun()
        self._local = threading.local()
        self._lock = threading.Lock()

    def RegisterResource(self, request: Any) -> Any:
        self._local.request = request
        return super().RegisterResource(request)

    def note(self, args: pmocks.MockResourceArgs) -> None:
        req = self._local.request
        record = Record(
            urn=self.make_urn(req.parent, req.type, req.name),
            type=req.type,
            name=req.name,
            custom=bool(req.custom),
            parent=req.parent or None,
            dependencies=list(req.dependencies),
            provider=req.provider.split("::")[-2] if req.provider else None,
            inputs=args.inputs,
            ignore_changes=list(req.ignoreChanges),
            additional_secret_outputs=list(req.additionalSecretOutputs),
            property_dependencies={k: list(v.urns) for k, v in req.propertyDependencies.items()},
            remote=bool(req.remote),
        )
        with self._lock:
            self.run.records.append(record)


def run_program(cluster: dict[str, Any], stack: str, extra_config: dict[str, str] | None = None,
                sink: MockRun | None = None, previous_version: str | None = None,
                previous: dict[str, Any] | None = None, reclaim: bool = True) -> MockRun:
    """Execute __main__.py with `cluster` as hakube:cluster and a throwaway SSH key.

    Records go to `sink` when given, so a caller still sees them when the program raises.
    `previous_version` is the kubernetesVersion the stack's last deployment exported (None: a first
    deployment), what the program's read of its own stack's outputs returns. `reclaim`: see run_function.
    """
    config = {
        "hakube:cluster": json.dumps(cluster),
        # Never used to connect: under mocks nothing leaves this process.
        "hakube:sshPrivateKey": "dry-run throwaway key " + pysecrets.token_hex(16),
        "hakube:etcdBackupSshKey": "-----BEGIN OPENSSH PRIVATE KEY-----\ndry-run throwaway "
                                   f"{pysecrets.token_hex(16)}\n-----END OPENSSH PRIVATE KEY-----",
    }
    passwords = {f"hakube:{key}": "dry-run throwaway " + pysecrets.token_hex(8) for key in password_keys(cluster)}
    config.update({**passwords, **(extra_config or {})})
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return run_function(
        lambda: runpy.run_path(str(REPO / "__main__.py"), run_name="__main__"), stack,
        config=config, secret_keys=["hakube:sshPrivateKey", "hakube:vrrpPassword", "hakube:etcdBackupSshKey",
                                    *passwords],
        sink=sink,
        # `previous`: more of the last deployment's outputs (topology/bootstrap.py's), as read there too.
        previous_outputs=_previous_outputs(cluster, extra_config or {}, previous_version, previous or {}),
        reclaim=reclaim,
    )


def _previous_outputs(cluster: dict[str, Any], config: dict[str, str], version: str | None,
                      previous: dict[str, Any]) -> dict[str, Any]:
    """The last deployment's outputs: `previous`, its `version`, and, unless `previous` names them, the
    encryption keys of `cluster` itself (the stand-in deployment had this file's keys, as the committed
    file's version stands for the deployed one)."""
    outputs = {**previous, **({"kubernetesVersion": version} if version else {})}
    if outputs and encryption.OUTPUT not in outputs:
        try:
            given = json.loads(config.get(f"hakube:{encryption.KEYS_CONFIG}", "{}"))
            outputs[encryption.OUTPUT] = encryption.deployed_keys(load_cluster(cluster), given)
        except (TopologyError, ValueError, TypeError, KeyError):
            pass  # a stack file the program refuses anyway
    return outputs


def password_keys(cluster: dict[str, Any]) -> list[str]:
    """The registry password secrets a `hakube:cluster` value names (registries.endpoints[*].passwordSecret of
    endpoints with a username), for which the dry run supplies throwaway values."""
    from topology.model import RegistryEndpoint

    default = RegistryEndpoint.model_fields["password_secret"].default
    registries = cluster.get("registries") if isinstance(cluster, dict) else None
    endpoints = registries.get("endpoints") if isinstance(registries, dict) else None
    if not isinstance(endpoints, dict):
        return []
    return sorted({str(e.get("passwordSecret", default)) for e in endpoints.values()
                   if isinstance(e, dict) and e.get("username")})


def run_function(fn: Callable[[], Any], stack: str, *, config: dict[str, str] | None = None,
                 secret_keys: Sequence[str] = (), sink: MockRun | None = None,
                 previous_outputs: dict[str, Any] | None = None, reclaim: bool = True) -> MockRun:
    """Run `fn` as a Pulumi program under mocks; record its resources and its stack exports.

    `reclaim=False` is for a process that ends soon after (the dry run's command line, the scale
    bench): the run's garbage is left for the exit instead of paid for by a full collection, which
    took 9 s of 1,000 workers' 55 s (bench/scale.py).
    """
    monitor = _RecordingMonitor()
    monitor.mocks.previous_outputs = dict(previous_outputs or {})
    if sink is not None:
        monitor.run = sink
    pulumi.runtime.set_all_config(config or {}, secret_keys=list(secret_keys))
    # A fresh root Stack per run, so runs in one process (tests, benches) never share outputs.
    pulumi.runtime.settings.set_root_resource(None)  # type: ignore[arg-type]
    pulumi.runtime.set_mocks(monitor.mocks, project="hakube", stack=stack, preview=False, monitor=monitor)

    exports: dict[str, pulumi.Output[Any]] = {}

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        fn()
        root = pulumi.runtime.get_root_resource()
        outputs = getattr(root, "outputs", {}) or {}
        exports.update({n: pulumi.Output.from_input(o) for n, o in outputs.items()})
        names = list(outputs)
        return pulumi.Output.all(*(outputs[n] for n in names)).apply(
            lambda values: monitor.run.outputs.update(zip(names, values, strict=True))
        )

    # Python's full collections rescan the whole heap, which grows with the stack: with the
    # collector on, 1,000 workers ran ~1.5x slower (bench/scale.py). The run's cyclic garbage is
    # freed by the one collection below instead.
    collecting = gc.isenabled()
    gc.disable()
    try:
        with _no_source_positions():
            program()
    finally:
        if reclaim:
            gc.collect()
        else:
            gc.freeze()  # out of every later collection's reach: nothing scans or frees it before exit
        if collecting:
            gc.enable()
    # Secret exports stay marked as such, so plan files show them as "[secret]".
    for name, out in exports.items():
        if name in monitor.run.outputs and _sync_await(out.is_secret()):
            monitor.run.outputs[name] = {rpc._special_sig_key: rpc._special_secret_sig,
                                         "value": monitor.run.outputs[name]}
    return monitor.run


@contextmanager
def _no_source_positions() -> Iterator[None]:
    """The SDK records, for each resource, the stack of the code that created it (traceback plus a
    file URI per frame) for the engine to show; the mock monitor drops it unread. Skipping that
    took 10% off the 1,000-worker program (bench/scale.py). Nothing else in the SDK reads it."""
    capture = getattr(sdk_resource, "_get_stack_trace", None)
    if capture is None:  # an SDK without the hook: nothing to skip
        yield
        return
    sdk_resource._get_stack_trace = source_pb2.StackTrace  # type: ignore[attr-defined]  # an empty trace
    try:
        yield
    finally:
        sdk_resource._get_stack_trace = capture  # type: ignore[attr-defined]


def is_secret(value: Any) -> bool:
    return rpc.is_rpc_secret(value)


def public(value: Any) -> Any:
    """The value with every secret replaced by "[secret]" (what plan files may show)."""
    if rpc.is_rpc_secret(value):
        return SECRET_MARK
    if isinstance(value, dict):
        return {k: public(v) for k, v in value.items()}
    if isinstance(value, list):
        return [public(v) for v in value]
    return value
