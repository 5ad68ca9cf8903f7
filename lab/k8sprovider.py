"""The real pulumi-kubernetes provider (pulumi-resource-kubernetes) driven over its gRPC provider protocol,
as the Pulumi engine drives it during `pulumi up`, without the engine: the Python language host cannot be
built here, so no Pulumi program runs; this is the provider's own Configure/Check/Create code talking to a
real apiserver.

`apply(provider, kubeconfig, resources)` starts the binary with the address of a minimal engine of ours
(it only takes the provider's log messages), reads the port it prints, sends Configure with the kubeconfig
(contents, as a stack's secret kubeconfig would reach it), then Check and Create for each resource in
order, and reports each one's outcome. Resources are (type token, name, inputs) where inputs are the
provider's property map: apiVersion/kind/metadata/spec, what the SDK's resource class sends.

Also a program: `python lab/k8sprovider.py PROVIDER KUBECONFIG < resources.json` prints the results as
JSON; run it inside the network namespace that reaches the apiserver (the provider inherits it).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent import futures
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import engine_pb2_grpc, provider_pb2, provider_pb2_grpc

if __package__ in (None, ""):  # run as a program inside a namespace: the repository's modules by path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from configs import addons as cfg

STACK, PROJECT = "lab", "hakube"
PORT_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 120.0
# The engine's Create timeout (seconds) for one resource; these objects have no await logic to wait on.
CREATE_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Outcome:
    type: str
    name: str
    id: str
    failures: list[str]  # Check's failures
    error: str  # Create's error, if any
    outputs: dict[str, Any]


class _Engine(engine_pb2_grpc.EngineServicer):
    """The engine end the provider logs to (the messages are kept for the report)."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def Log(self, request: Any, context: Any) -> empty_pb2.Empty:
        self.messages.append(request.message)
        return empty_pb2.Empty()


def urn(type_token: str, name: str) -> str:
    return f"urn:pulumi:{STACK}::{PROJECT}::{type_token}::{name}"


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(value)
    return out


@contextmanager
def _engine() -> Iterator[tuple[_Engine, int]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    engine = _Engine()
    engine_pb2_grpc.add_EngineServicer_to_server(engine, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield engine, port
    finally:
        server.stop(grace=None)


@contextmanager
def _provider(binary: Path, engine_port: int) -> Iterator[provider_pb2_grpc.ResourceProviderStub]:
    proc = subprocess.Popen([str(binary), f"127.0.0.1:{engine_port}"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        port = _read_port(proc)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=PORT_TIMEOUT_S)
            yield provider_pb2_grpc.ResourceProviderStub(channel)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _read_port(proc: subprocess.Popen[str]) -> int:
    """The provider's first stdout line is its gRPC port (the plugin protocol)."""
    deadline = time.monotonic() + PORT_TIMEOUT_S
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the provider prints it at once; a dead one closes stdout
    if not line.strip().isdigit() or time.monotonic() > deadline:
        raise RuntimeError(f"the provider printed {line!r} instead of its port (exit {proc.poll()})")
    return int(line)


def _configure(stub: provider_pb2_grpc.ResourceProviderStub, kubeconfig: str) -> None:
    # As the engine sends an explicit provider's inputs: both the variables map and the args struct.
    args = {"kubeconfig": kubeconfig}
    stub.Configure(provider_pb2.ConfigureRequest(variables={"kubernetes:config:kubeconfig": kubeconfig},
                                                 args=_struct(args), acceptSecrets=False, acceptResources=True),
                   timeout=CALL_TIMEOUT_S)


def _apply_one(stub: provider_pb2_grpc.ResourceProviderStub, type_token: str, name: str,
               inputs: dict[str, Any]) -> Outcome:
    resource_urn = urn(type_token, name)
    checked = stub.Check(provider_pb2.CheckRequest(urn=resource_urn, olds=_struct({}), news=_struct(inputs),
                                                   name=name, type=type_token, randomSeed=b"hakube-lab"),
                         timeout=CALL_TIMEOUT_S)
    failures = [f"{f.property}: {f.reason}" for f in checked.failures]
    if failures:
        return Outcome(type_token, name, "", failures, "", {})
    try:
        created = stub.Create(provider_pb2.CreateRequest(urn=resource_urn, properties=checked.inputs,
                                                         timeout=CREATE_TIMEOUT_S, name=name, type=type_token),
                              timeout=CALL_TIMEOUT_S)
    except grpc.RpcError as err:
        return Outcome(type_token, name, "", [], f"{err.code().name}: {err.details()}", {})
    return Outcome(type_token, name, created.id, [], "", json_format.MessageToDict(created.properties))


def apply(binary: Path, kubeconfig: str, resources: Sequence[tuple[str, str, dict[str, Any]]]) -> list[Outcome]:
    """Configure the provider with `kubeconfig` (contents), then Check + Create each resource in order."""
    with _engine() as (_, engine_port), _provider(binary, engine_port) as stub:
        _configure(stub, kubeconfig)
        return [_apply_one(stub, type_token, name, inputs) for type_token, name, inputs in resources]


Resource = tuple[str, str, dict[str, Any]]
# The provider's await logic waits for a Deployment's rollout and a Service's endpoints, which need
# kubelets and controllers the lab does not run; this annotation (the provider's own) skips only that.
SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}


def _object(api_version: str, kind: str, metadata: dict[str, Any], spec: dict[str, Any] | None = None,
            ) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **({"spec": spec} if spec else {})}


def _awaitless(manifest: dict[str, Any]) -> dict[str, Any]:
    metadata = manifest["metadata"]
    return {**manifest, "metadata": {**metadata, "annotations": {**metadata.get("annotations", {}), **SKIP_AWAIT}}}


def plain_addons(cluster: Any) -> list[Resource]:
    """The add-ons that are plain Kubernetes objects, as components/addons.py declares them (same type
    tokens, names and configs/addons.py content), in its order: the namespaces with their Pod Security
    labels (the default namespace as a NamespacePatch), the isolation policy then its binding, and the
    smoke test's Deployment and Service when enabled. Left out, as they need charts or manifests fetched
    from the network: the CNI release (and Calico's CRD chart), the Gateway API CRDs, Envoy Gateway's
    charts and the Gateway objects whose kinds they define (the smoke test's HTTPRoute too), MetalLB's
    release and its pool."""
    out: list[Resource] = []
    for ns in cfg.namespaces(cluster):
        token = "kubernetes:core/v1:Namespace" if ns.create else "kubernetes:core/v1:NamespacePatch"
        out.append((token, f"addon-ns-{ns.name}", _object("v1", "Namespace", cfg.namespace_manifest(ns))))
    admission = "admissionregistration.k8s.io/v1"
    name = {"name": cfg.ISOLATION_POLICY_NAME}
    out.append((f"kubernetes:{admission}:ValidatingAdmissionPolicy", "addon-isolation-policy",
                _object(admission, "ValidatingAdmissionPolicy", name, cfg.isolation_policy_spec(cluster))))
    out.append((f"kubernetes:{admission}:ValidatingAdmissionPolicyBinding", "addon-isolation-binding",
                _object(admission, "ValidatingAdmissionPolicyBinding", name, cfg.isolation_binding_spec())))
    if cluster.addons.smoke_test:
        out.append(("kubernetes:apps/v1:Deployment", "addon-smoke-deployment",
                    _awaitless(cfg.smoke_deployment(cluster))))
        out.append(("kubernetes:core/v1:Service", "addon-smoke-service", _awaitless(cfg.smoke_service())))
    return out


def main(argv: Sequence[str]) -> int:
    binary, kubeconfig = Path(argv[0]), Path(argv[1]).read_text()
    resources = [tuple(r) for r in json.load(sys.stdin)]
    outcomes = apply(binary, kubeconfig, resources)  # type: ignore[arg-type]
    print(json.dumps([asdict(o) for o in outcomes]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
