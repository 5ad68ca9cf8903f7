"""The cluster behind the lab's kubeadm, kubectl and etcdctl shims (lab/shims/).

A lab host cannot run a kubelet (no cpu/memory cgroup controllers) nor, then, a real control plane, so
these stand-ins keep the state kubeadm, kubectl and etcd would, and speak for it the way hakube's host
scripts expect: `kubeadm init` makes a real CA and serving certificate (openssl), the kubeconfigs and
the static-pod manifests, and starts this file's `apiserver` as the node's kube-apiserver (TLS on its
advertise address and bind port: /readyz, /version, and a small JSON API under /hakube-lab/). The first
node's apiserver holds the cluster's store (nodes, etcd members, bootstrap tokens, uploaded certificate
keys: /var/lib/hakube-lab/apiserver/store.json in its own /var); the apiservers of joined control-plane
nodes pass those calls on to it. Secrets are checked as a cluster would: `kubeadm join` verifies the
CA found at the endpoint against its caCertHashes, and the store refuses an unknown or expired token or
certificate key. kubectl talks to the server in its kubeconfig (the VIP, through HAProxy).

Runs inside a lab host, as `python -I fakecluster.py TOOL ARGS...` (the shims exec it; stdlib and
PyYAML only). Every call is logged to /var/log/hakube-lab/TOOL.log (argv only: no secret is ever on
a hakube command line).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import json
import os
import re
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

LAB_LOG = Path("/var/log/hakube-lab")
APISERVER_DIR = Path("/var/lib/hakube-lab/apiserver")  # this node's apiserver: pid, url, log, store
STORE = APISERVER_DIR / "store.json"
ETCD_CLIENT_TOKEN = APISERVER_DIR / "etcd-client.token"  # what the etcd client certificate stands for
K8S = Path("/etc/kubernetes")
PKI = K8S / "pki"
MANIFESTS = K8S / "manifests"
ADMIN_CONF = K8S / "admin.conf"
KUBELET_CONF = K8S / "kubelet.conf"
KUBELET_DIR = Path("/var/lib/kubelet")
ETCD_DIR = Path("/var/lib/etcd")
TOKEN = re.compile(r"^[a-z0-9]{6}\.[a-z0-9]{16}$")
CERTIFICATE_KEY_TTL_S = 2 * 3600  # kubeadm deletes uploaded certificates after two hours
READY_TIMEOUT_S = 15
CONTROL_PLANE_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")


class Refused(Exception):
    """What the tool says before exiting 1."""


def log_call(tool: str, argv: list[str]) -> None:
    with contextlib.suppress(OSError):
        LAB_LOG.mkdir(parents=True, exist_ok=True)
        with (LAB_LOG / f"{tool}.log").open("a") as f:
            f.write(f"{datetime.datetime.now().isoformat()} {tool} {' '.join(argv)}\n")


def now() -> float:
    return time.time()


def write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".lab-tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    tmp.replace(path)


def installed_version(package: str) -> str:
    """The host's dpkg version of PACKAGE as Kubernetes spells it (1.37.2-1.1 -> v1.37.2), or ""."""
    out = subprocess.run(["dpkg-query", "-W", "-f=${Status} ${Version}", package], capture_output=True,
                         text=True, check=False).stdout
    if not out.startswith("install ok installed "):
        return ""
    version = out.removeprefix("install ok installed ").split(":", 1)[-1]
    return "v" + version.split("-", 1)[0]


# ------------------------------------------------------------------------------------------------
# Certificates (openssl, as on the node)


def openssl(*args: str, stdin: str | None = None) -> str:
    result = subprocess.run(["openssl", *args], input=stdin, capture_output=True, text=True, check=False, timeout=30)
    if result.returncode != 0:
        raise Refused(f"openssl {args[0]} failed: {result.stderr.strip()}")
    return result.stdout


def make_ca(cluster: str) -> tuple[str, str]:
    PKI.mkdir(parents=True, exist_ok=True)
    key = PKI / "ca.key"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "3650",
            "-subj", f"/CN=kubernetes ({cluster})", "-keyout", str(key), "-out", str(PKI / "ca.crt"))
    return (PKI / "ca.crt").read_text(), key.read_text()


def sign(name: str, cn: str, sans: list[str], days: int = 365) -> None:
    """PKI/NAME.{crt,key}, signed by PKI/ca.{crt,key}, for CN and the IP/DNS SANs."""
    key, csr, crt = PKI / f"{name}.key", PKI / f"{name}.csr", PKI / f"{name}.crt"
    key.parent.mkdir(parents=True, exist_ok=True)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", f"/CN={cn}",
            "-keyout", str(key), "-out", str(csr))
    alt = ",".join(f"IP:{s}" if re.fullmatch(r"[\d.]+", s) else f"DNS:{s}" for s in sans) or f"DNS:{cn}"
    ext = PKI / f"{name}.ext"
    ext.write_text(f"subjectAltName={alt}\n")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(PKI / "ca.crt"), "-CAkey", str(PKI / "ca.key"),
            "-CAcreateserial", "-days", str(days), "-extfile", str(ext), "-out", str(crt))
    csr.unlink()
    ext.unlink()
    key.chmod(0o600)


def ca_hash(ca_pem: str) -> str:
    """sha256:<hex> of the CA's DER SubjectPublicKeyInfo, as kubeadm's discovery hash."""
    pub = openssl("x509", "-noout", "-pubkey", stdin=ca_pem)
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub.encode(), capture_output=True,
                         check=True, timeout=30).stdout
    return "sha256:" + hashlib.sha256(der).hexdigest()


def kubeconfig(cluster: str, server: str, ca_pem: str, user: str, token: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": f"{user}@{cluster}",
        "clusters": [{"name": cluster, "cluster": {
            "server": server, "certificate-authority-data": base64.b64encode(ca_pem.encode()).decode()}}],
        "contexts": [{"name": f"{user}@{cluster}", "context": {"cluster": cluster, "user": user}}],
        "users": [{"name": user, "user": {"token": token}}],
    }, sort_keys=False)


# ------------------------------------------------------------------------------------------------
# Talking to the cluster


class Api:
    """HTTPS to one apiserver with the cluster CA (or none yet: discovery) and a bearer token."""

    def __init__(self, server: str, ca_pem: str | None = None, token: str | None = None, timeout: float = 10) -> None:
        self.server, self.token, self.timeout = server.rstrip("/"), token, timeout
        self.ctx = ssl.create_default_context(cadata=ca_pem) if ca_pem else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if not ca_pem:  # discovery: the CA is what the caller checks against its hash next
            self.ctx.check_hostname = False
            self.ctx.verify_mode = ssl.CERT_NONE

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.server + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, context=self.ctx, timeout=self.timeout) as response:
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as err:
            raw, status = err.read(), err.code
        except (OSError, ssl.SSLError) as err:
            raise Refused(f"Unable to connect to the server {self.server}: {err}") from None
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = self.call(method, path, body)
        if status >= 300:
            message = answer.get("message") if isinstance(answer, dict) else answer
            raise Refused(f"Error from server ({status}): {message}")
        return answer


def api_from_kubeconfig(path: Path, timeout: float = 10) -> Api:
    if not path.is_file():
        raise Refused(f"error: stat {path}: no such file or directory")
    config = yaml.safe_load(path.read_text())
    cluster = config["clusters"][0]["cluster"]
    ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
    return Api(cluster["server"], ca, config["users"][0]["user"]["token"], timeout)


# ------------------------------------------------------------------------------------------------
# The apiserver (one per control-plane node; the first holds the store)


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.data: dict[str, Any] = json.loads(path.read_text())

    def save(self) -> None:
        write(self.path, json.dumps(self.data, indent=1), 0o600)


def node_object(name: str, kubelet: str, control_plane: bool) -> dict[str, Any]:
    labels = {"kubernetes.io/hostname": name}
    if control_plane:
        labels["node-role.kubernetes.io/control-plane"] = ""
    return {"metadata": {"name": name, "labels": labels, "annotations": {}}, "spec": {"unschedulable": False},
            "status": {"nodeInfo": {"kubeletVersion": kubelet}}}


def handle_store(store: Store, method: str, path: str, auth: str, body: Any) -> tuple[int, Any]:
    """The JSON API under /hakube-lab/ (path without that prefix)."""
    data = store.data
    if method == "GET" and path == "cluster-info":  # public, like kube-public/cluster-info
        return 200, {"ca": data["ca"]["cert"]}
    if method == "POST" and path == "join":
        return join_cluster(store, body or {})
    if auth != f"Bearer {data['adminToken']}":
        return 401, {"message": "Unauthorized"}
    parts = path.split("/")
    with store.lock:
        if method == "POST" and path == "tokens":
            data["tokens"][body["token"]] = now() + float(body["ttlSeconds"])
        elif method == "POST" and path == "certificate-keys":
            data["certificateKeys"][body["key"]] = now() + CERTIFICATE_KEY_TTL_S
        elif parts[0] == "nodes" and len(parts) == 2:
            node = data["nodes"].get(parts[1])
            if node is None:
                return 404, {"message": f'nodes "{parts[1]}" not found'}
            if method == "PATCH":
                node["spec"].update(body.get("spec") or {})
                annotations = node["metadata"]["annotations"]
                for key, value in (body.get("annotations") or {}).items():
                    if value is None:
                        annotations.pop(key, None)
                    else:
                        annotations[key] = value
            elif method == "DELETE":
                del data["nodes"][parts[1]]
            elif method != "GET":
                return 405, {"message": method}
            if method != "GET":
                store.save()
            return 200, node
        elif method == "GET" and path == "members":
            return 200, data["members"]
        elif method == "DELETE" and parts[0] == "members" and len(parts) == 2:
            if data["members"].pop(parts[1], None) is None:
                return 404, {"message": "etcdserver: member not found"}
        elif method == "GET" and path == "nodes":
            return 200, data["nodes"]
        else:
            return 404, {"message": f"no {method} {path}"}
        store.save()
    return 200, {}


def join_cluster(store: Store, body: dict[str, Any]) -> tuple[int, Any]:
    data = store.data
    with store.lock:
        if data["tokens"].get(body.get("token", ""), 0) < now():
            return 401, {"message": "the bootstrap token is not known or has expired"}
        control_plane = bool(body.get("controlPlane"))
        if control_plane and data["certificateKeys"].get(body.get("certificateKey", ""), 0) < now():
            return 403, {"message": "the kubeadm-certs Secret for this certificate key is not found or has expired"}
        name = body["node"]
        data["nodes"][name] = node_object(name, body["kubeletVersion"], control_plane)
        answer: dict[str, Any] = {"kubeletConfig": data["kubeletConfig"], "version": data["version"],
                                  "cluster": data["cluster"]}
        if control_plane:
            address = body["controlPlaneAddress"]
            data["members"][secrets.token_hex(8)] = {"name": name, "peer": f"https://{address}:2380",
                                                     "client": f"https://{address}:2379"}
            answer.update(ca=data["ca"], adminToken=data["adminToken"], store=data["url"])
        store.save()
    return 200, answer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ApiServer

    def setup(self) -> None:
        self.request.settimeout(30)
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms delayed-ACK stalls
        self.request.do_handshake()  # here, in this connection's thread, not in accept()
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
        raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        path = self.path.split("?", 1)[0]
        if path in ("/readyz", "/livez", "/healthz"):
            self._send(200, "ok", "text/plain")
        elif path == "/version":
            major, minor = self.server.version.lstrip("v").split(".")[:2]
            self._send(200, {"major": major, "minor": minor, "gitVersion": self.server.version})
        elif path.startswith("/hakube-lab/"):
            self._send(*self.server.route(self.command, path.removeprefix("/hakube-lab/"),
                                          self.headers.get("Authorization", ""), body))
        else:
            self._send(404, {"message": f"the lab's apiserver serves no {path}"})

    do_GET = do_POST = do_PATCH = do_DELETE = _handle


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: str, port: int, version: str, store: Store | None, upstream: str | None) -> None:
        super().__init__((address, port), Handler)
        self.version, self.store, self.upstream = version, store, upstream
        self.ca = (PKI / "ca.crt").read_text()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(PKI / "apiserver.crt"), str(PKI / "apiserver.key"))
        self.socket = ctx.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def route(self, method: str, path: str, auth: str, body: Any) -> tuple[int, Any]:
        if self.store is not None:
            return handle_store(self.store, method, path, auth, body)
        assert self.upstream is not None
        try:
            return Api(self.upstream, self.ca, auth.removeprefix("Bearer ") or None).call(
                method, f"/hakube-lab/{path}", body)
        except Refused as err:
            return 503, {"message": f"etcd unavailable: {err}"}


def apiserver_main(argv: list[str]) -> None:
    """apiserver ADDRESS PORT VERSION [UPSTREAM_URL]: serve until killed."""
    address, port, version = argv[0], int(argv[1]), argv[2]
    upstream = argv[3] if len(argv) > 3 else None
    server = ApiServer(address, port, version, None if upstream else Store(STORE), upstream)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    server.serve_forever()


def start_apiserver(address: str, port: int, version: str, upstream: str | None = None) -> None:
    """The kube-apiserver static pod's stand-in, detached (the host's PID 1 reaps it), until ready."""
    APISERVER_DIR.mkdir(parents=True, exist_ok=True)
    stop_apiserver()
    argv = [sys.executable, "-I", str(Path(__file__).resolve()), "apiserver", address, str(port), version]
    with (APISERVER_DIR / "apiserver.log").open("ab") as log_file:
        proc = subprocess.Popen([*argv, *([upstream] if upstream else [])], stdin=subprocess.DEVNULL,
                                stdout=log_file, stderr=log_file, start_new_session=True)
    write(APISERVER_DIR / "pid", f"{proc.pid}\n")
    write(APISERVER_DIR / "url", f"https://{address}:{port}\n")
    if proc.poll() is not None:
        raise Refused(f"the kube-apiserver exited; see {APISERVER_DIR}/apiserver.log")
    wait_ready(Api(f"https://{address}:{port}"), "this node's kube-apiserver", READY_TIMEOUT_S)


def wait_ready(api: Api, what: str, timeout: float = 40) -> None:
    deadline = now() + timeout
    while True:
        with contextlib.suppress(Refused):
            if api.call("GET", "/readyz")[0] == 200:
                return
        if now() > deadline:
            raise Refused(f"[api-check] {what} {api.server} did not answer /readyz in {timeout:.0f} s")
        time.sleep(0.2)


def stop_apiserver() -> bool:
    pid_file = APISERVER_DIR / "pid"
    if not pid_file.is_file():
        return False
    pid = int(pid_file.read_text())
    pid_file.unlink()
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
    return True


# ------------------------------------------------------------------------------------------------
# kubeadm


def config_docs(path: str) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(Path(path).read_text()) if doc}


def option(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def new_token() -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(6)) + "." + "".join(
        secrets.choice(alphabet) for _ in range(16))


def write_node_files(name: str, server: str, ca_pem: str, cluster: str, kubelet_config: str, version: str,
                     control_plane: bool) -> None:
    """What kubeadm leaves on a node: the kubelet's kubeconfig and configuration, static-pod manifests."""
    write(KUBELET_CONF, kubeconfig(cluster, server, ca_pem, f"system:node:{name}", secrets.token_hex(16)), 0o600)
    write(KUBELET_DIR / "config.yaml", kubelet_config)
    for component in CONTROL_PLANE_COMPONENTS if control_plane else ():
        image = f"registry.k8s.io/{component}:{version}" if component != "etcd" else "registry.k8s.io/etcd:3.6.16-0"
        manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": component, "namespace": "kube-system"},
                    "spec": {"containers": [{"name": component, "image": image}]}}
        write(MANIFESTS / f"{component}.yaml", yaml.safe_dump(manifest, sort_keys=False), 0o600)
    subprocess.run(["systemctl", "restart", "kubelet"], check=False, capture_output=True)


def control_plane_certificates(name: str, addresses: list[str]) -> None:
    sign("apiserver", "kube-apiserver", addresses)
    sign("apiserver-etcd-client", f"kube-apiserver-etcd-client ({name})", [])


def kubeadm_init(argv: list[str]) -> None:
    docs = config_docs(option(argv, "--config") or "/etc/kubernetes/kubeadm/init.yaml")
    init, cluster_config = docs["InitConfiguration"], docs["ClusterConfiguration"]
    if ADMIN_CONF.exists():
        raise Refused("[preflight] /etc/kubernetes/admin.conf already exists")
    name, cluster = init["nodeRegistration"]["name"], cluster_config.get("clusterName", "kubernetes")
    version = cluster_config["kubernetesVersion"]
    endpoint = init["localAPIEndpoint"]
    server = f"https://{cluster_config['controlPlaneEndpoint']}"
    print(f"[init] Using Kubernetes version: {version}")
    ca_cert, ca_key = make_ca(cluster)
    sans = [endpoint["advertiseAddress"], *map(str, cluster_config.get("apiServer", {}).get("certSANs", []))]
    control_plane_certificates(name, sans)
    admin_token, join_token, certificate_key = secrets.token_hex(16), new_token(), secrets.token_hex(32)
    address = endpoint["advertiseAddress"]
    store = {
        "cluster": cluster, "version": version, "url": f"https://{address}:{endpoint['bindPort']}",
        "ca": {"cert": ca_cert, "key": ca_key}, "adminToken": admin_token,
        "tokens": {join_token: now() + 15 * 60}, "certificateKeys": {certificate_key: now() + CERTIFICATE_KEY_TTL_S},
        "kubeletConfig": yaml.safe_dump(docs.get("KubeletConfiguration", {}), sort_keys=False),
        "nodes": {name: node_object(name, installed_version("kubelet"), True)},
        "members": {secrets.token_hex(8): {"name": name, "peer": f"https://{address}:2380",
                                           "client": f"https://{address}:2379"}},
    }
    write(STORE, json.dumps(store, indent=1), 0o600)
    write(ETCD_CLIENT_TOKEN, admin_token, 0o600)
    write(ADMIN_CONF, kubeconfig(cluster, server, ca_cert, "kubernetes-admin", admin_token), 0o600)
    write_node_files(name, server, ca_cert, cluster, store["kubeletConfig"], version, control_plane=True)
    start_apiserver(address, int(endpoint["bindPort"]), version)
    wait_ready(Api(server, ca_cert), "the control-plane endpoint")  # kubeadm then uploads through it
    print("Your Kubernetes control-plane has initialized successfully!")
    # As kubeadm prints them: the caller redacts this output (configs/scripts/lib.sh redact).
    print(f"  kubeadm join {cluster_config['controlPlaneEndpoint']} --token {join_token} \\\n"
          f"    --discovery-token-ca-cert-hash {ca_hash(ca_cert)} --control-plane --certificate-key {certificate_key}")


def kubeadm_join(argv: list[str]) -> None:
    docs = config_docs(option(argv, "--config") or "/etc/kubernetes/kubeadm/join.yaml")
    join = docs["JoinConfiguration"]
    discovery = join["discovery"]["bootstrapToken"]
    name, control = join["nodeRegistration"]["name"], join.get("controlPlane")
    endpoint = f"https://{discovery['apiServerEndpoint']}"
    if KUBELET_CONF.exists():
        raise Refused("[preflight] /etc/kubernetes/kubelet.conf already exists")
    if not TOKEN.match(discovery["token"]):
        raise Refused("the discovery token is not a bootstrap token")
    ca_cert = Api(endpoint).ok("GET", "/hakube-lab/cluster-info")["ca"]
    if ca_hash(ca_cert) not in discovery.get("caCertHashes", []):
        raise Refused(f"cluster CA found in cluster-info does not match the expected hashes at {endpoint}")
    print(f"[discovery] Cluster info signature and contents are valid: {endpoint}")
    request = {"node": name, "token": discovery["token"], "kubeletVersion": installed_version("kubelet"),
               "controlPlane": bool(control)}
    if control:
        local = control["localAPIEndpoint"]
        request.update(certificateKey=control.get("certificateKey", ""), controlPlaneAddress=local["advertiseAddress"])
    answer = Api(endpoint, ca_cert).ok("POST", "/hakube-lab/join", request)
    if control:
        write(PKI / "ca.crt", answer["ca"]["cert"])
        write(PKI / "ca.key", answer["ca"]["key"], 0o600)
        control_plane_certificates(name, [local["advertiseAddress"], discovery["apiServerEndpoint"].split(":")[0]])
        write(ETCD_CLIENT_TOKEN, answer["adminToken"], 0o600)
        write(ADMIN_CONF, kubeconfig(answer["cluster"], endpoint, ca_cert, "kubernetes-admin", answer["adminToken"]),
              0o600)
    else:
        write(PKI / "ca.crt", ca_cert)
    write_node_files(name, endpoint, ca_cert, answer["cluster"], answer["kubeletConfig"], answer["version"],
                     control_plane=bool(control))
    if control:
        start_apiserver(local["advertiseAddress"], int(local["bindPort"]), answer["version"], answer["store"])
    print("This node has joined the cluster" + (" and a new control plane instance was created" if control else ""))


def kubeadm_reset() -> None:
    if stop_apiserver():
        print("[reset] Stopped the kube-apiserver static pod")
    subprocess.run(["systemctl", "stop", "kubelet"], check=False, capture_output=True)
    removed = []
    for path in (MANIFESTS, PKI, ETCD_DIR, KUBELET_DIR, *(K8S / f"{n}.conf" for n in (
            "admin", "super-admin", "kubelet", "controller-manager", "scheduler"))):
        if path.is_dir():
            for child in sorted(path.rglob("*"), reverse=True):  # contents only, deepest first
                if child.is_dir() and not child.is_symlink():
                    child.rmdir()
                else:
                    child.unlink()
            removed.append(str(path))
        elif path.exists():
            path.unlink()
            removed.append(str(path))
    for path in (STORE, ETCD_CLIENT_TOKEN, APISERVER_DIR / "url"):
        path.unlink(missing_ok=True)
    print(f"[reset] Deleted contents of: {removed}")


def kubeadm_certs(argv: list[str]) -> None:
    if argv[:1] == ["renew"]:
        for cert in sorted(PKI.rglob("*.crt")):
            if cert.name != "ca.crt":
                print(f"certificate {cert.stem} renewed (hakube lab: the expiry is left as it is)")
        return
    print("CERTIFICATE                EXPIRES                  RESIDUAL TIME   CERTIFICATE AUTHORITY")
    for cert in sorted(PKI.rglob("*.crt")):
        end = openssl("x509", "-noout", "-enddate", "-in", str(cert)).strip().split("=", 1)[1]
        print(f"{cert.relative_to(PKI).with_suffix('')!s:26} {end:24} (hakube lab)    ca")


def kubeadm_upgrade(argv: list[str]) -> None:
    docs = config_docs(option(argv, "--config") or "")
    target = docs["UpgradeConfiguration"].get("apply", {}).get("kubernetesVersion", "")
    if argv[0] == "plan":
        print(f"[upgrade/versions] Target version: {target}")
        return
    manifest = MANIFESTS / "kube-apiserver.yaml"
    if manifest.exists() and target:
        text = re.sub(r"(kube-apiserver:)v\S+", rf"\g<1>{target}", manifest.read_text())
        write(manifest, text, 0o600)
    print(f"[upgrade] The control plane instance for this node was successfully upgraded to {target or 'its version'}")


def kubeadm(argv: list[str]) -> None:
    words = [a for a in argv if not a.startswith("-")]
    verb = words[0] if words else ""
    if verb == "version":
        version = installed_version("kubeadm")
        if not version:
            raise Refused("kubeadm: the package is not installed on this host")
        print(version if option(argv, "-o") == "short" else f'kubeadm version: {{GitVersion:"{version}"}}')
    elif verb == "init" and words[1:3] == ["phase", "upload-certs"]:
        key = secrets.token_hex(32)
        api_from_kubeconfig(Path(option(argv, "--kubeconfig") or ADMIN_CONF)).ok(
            "POST", "/hakube-lab/certificate-keys", {"key": key})
        print('[upload-certs] Storing the certificates in Secret "kubeadm-certs" in the "kube-system" Namespace')
        print(f"[upload-certs] Using certificate key:\n{key}")
    elif verb == "init":
        kubeadm_init(argv)
    elif verb == "join":
        kubeadm_join(argv)
    elif verb == "token" and words[1:2] == ["create"]:
        token = new_token()
        ttl = option(argv, "--ttl") or "24h"
        seconds = int(ttl[:-1]) * {"s": 1, "m": 60, "h": 3600}[ttl[-1]]
        api_from_kubeconfig(Path(option(argv, "--kubeconfig") or ADMIN_CONF)).ok(
            "POST", "/hakube-lab/tokens", {"token": token, "ttlSeconds": seconds})
        print(token)
    elif verb == "reset":
        kubeadm_reset()
    elif verb == "certs":
        kubeadm_certs(words[1:])
    elif verb == "upgrade":
        kubeadm_upgrade(words[1:] + [a for a in argv if a.startswith("-")])
    else:
        raise Refused(f"kubeadm (hakube lab stand-in): unsupported command {' '.join(words) or '(none)'}")


# ------------------------------------------------------------------------------------------------
# kubectl


VALUED = {"--kubeconfig", "--request-timeout", "-o", "--output", "--timeout", "--skip-wait-for-delete-timeout"}


def parse_kubectl(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    words, flags = [], {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("-"):
            name, eq, value = arg.partition("=")
            if not eq and name in VALUED and i + 1 < len(argv):
                value, i = argv[i + 1], i + 1
            flags[name] = value if (eq or name in VALUED) else "true"
        else:
            words.append(arg)
        i += 1
    return words, flags


def jsonpath(obj: Any, expression: str) -> str:
    """{.a.b.c}, with `\\.` inside a key (kubectl's escape for dotted annotation names)."""
    body = expression.strip().removeprefix("{").removesuffix("}").lstrip(".")
    for key in re.split(r"(?<!\\)\.", body):
        obj = obj.get(key.replace("\\.", ".")) if isinstance(obj, dict) else None
    return "" if obj is None else str(obj)


def kubectl(argv: list[str]) -> None:
    words, flags = parse_kubectl(argv)
    path = Path(flags.get("--kubeconfig") or os.environ.get("KUBECONFIG") or Path.home() / ".kube/config")
    timeout = float((flags.get("--request-timeout") or "10s").rstrip("s") or 10)
    api = api_from_kubeconfig(path, timeout)
    verb = words[0] if words else ""
    if verb == "get" and "--raw" in flags:
        status, body = api.call("GET", flags["--raw"])
        if status != 200:
            raise Refused(f"Error from server ({status}): {body}")
        print(body)
        return
    kind, name = (words[1], words[2]) if verb in ("get", "delete", "annotate") else ("node", words[1])
    if kind not in ("node", "nodes", "no"):
        raise Refused(f"kubectl (hakube lab stand-in): only nodes, not {kind}")
    node_path = f"/hakube-lab/nodes/{name}"
    status, node = api.call("GET", node_path)
    if status == 404:
        if "--ignore-not-found" in flags:
            return
        raise Refused(f'Error from server (NotFound): nodes "{name}" not found')
    if status != 200:
        raise Refused(f"Error from server ({status}): {node}")
    output = flags.get("-o") or flags.get("--output") or ""
    if verb == "get" and output.startswith("jsonpath="):
        sys.stdout.write(jsonpath(node, output.removeprefix("jsonpath=")))
    elif verb == "get":
        print(f"node/{name}" if output == "name" else name)
    elif verb in ("cordon", "drain", "uncordon"):
        api.ok("PATCH", node_path, {"spec": {"unschedulable": verb != "uncordon"}})
        print(f"node/{name} {verb}ed" if verb != "drain" else f"node/{name} drained")
    elif verb == "delete":
        api.ok("DELETE", node_path)
        print(f'node "{name}" deleted')
    elif verb == "annotate":
        changes: dict[str, str | None] = {}
        for item in words[3:]:
            if item.endswith("-"):
                changes[item[:-1]] = None
            else:
                key, _, value = item.partition("=")
                changes[key] = value
        api.ok("PATCH", node_path, {"annotations": changes})
        print(f"node/{name} annotated")
    else:
        raise Refused(f"kubectl (hakube lab stand-in): unsupported command {verb or '(none)'}")


# ------------------------------------------------------------------------------------------------
# etcdctl


def etcdctl(argv: list[str]) -> None:
    """member list | member remove ID, against the store through this node's apiserver (as root)."""
    if not ETCD_CLIENT_TOKEN.is_file() or not Path(os.environ.get("ETCDCTL_CERT", "/nonexistent")).is_file():
        raise Refused("Error: open etcd client certificate: no such file (not a control-plane node?)")
    url = (APISERVER_DIR / "url").read_text().strip()
    api = Api(url, (PKI / "ca.crt").read_text(), ETCD_CLIENT_TOKEN.read_text().strip())
    if argv[:2] == ["member", "list"]:
        for member_id, m in sorted(api.ok("GET", "/hakube-lab/members").items(), key=lambda kv: kv[1]["name"]):
            print(f"{member_id}, started, {m['name']}, {m['peer']}, {m['client']}, false")
    elif argv[:2] == ["member", "remove"] and len(argv) == 3:
        status, body = api.call("DELETE", f"/hakube-lab/members/{argv[2]}")
        if status != 200:
            raise Refused(f"Error: {body.get('message') if isinstance(body, dict) else body}")
        print(f"Member {argv[2]} removed from cluster")
    else:
        raise Refused(f"etcdctl (hakube lab stand-in): unsupported command {' '.join(argv)}")


TOOLS = {"kubeadm": kubeadm, "kubectl": kubectl, "etcdctl": etcdctl}


def main() -> None:
    tool, argv = sys.argv[1], sys.argv[2:]
    if tool == "apiserver":
        apiserver_main(argv)
        return
    log_call(tool, argv)
    try:
        TOOLS[tool](argv)
    except Refused as err:
        print(err, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
