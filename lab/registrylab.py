"""A stand-in image registry for the offline-site test (tests/lab/test_registry_netns.py), run inside a network
namespace the test made: `REGISTRYLAB_PASSWORD=W python registrylab.py serve --address A --port P --cert C
--key K --user U --log FILE`. Stdlib only.

It answers the OCI distribution API over TLS for any repository and tag with one tiny image (one layer holding
one file), asks for HTTP Basic credentials (a 401 with a Basic challenge, as a registry with a login does), and
logs every request as one JSON line: method, path, the `ns` query containerd adds for a mirror, and whether it
carried the expected credentials.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import io
import json
import os
import ssl
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image() -> tuple[bytes, dict[str, bytes]]:
    """(manifest, blobs by digest) of a one-layer linux/amd64 image."""
    tar_buffer = io.BytesIO()
    with tarfile.open(fileobj=tar_buffer, mode="w") as tar:
        info = tarfile.TarInfo("hakube-registrylab")
        payload = b"served by lab/registrylab.py\n"
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    layer_tar = tar_buffer.getvalue()
    layer = gzip.compress(layer_tar, mtime=0)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [_digest(layer_tar)]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _digest(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": _digest(layer),
                    "size": len(layer)}],
    }).encode()
    return manifest, {_digest(config): config, _digest(layer): layer}


class Registry(BaseHTTPRequestHandler):
    manifest: bytes = b""
    blobs: dict[str, bytes] = {}
    expected_auth: str = ""
    log_path: Path = Path("/dev/null")
    lock = threading.Lock()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _record(self, status: int) -> None:
        parts = urlsplit(self.path)
        auth = self.headers.get("Authorization")
        entry = {"method": self.command, "path": parts.path, "ns": parse_qs(parts.query).get("ns", [None])[0],
                 "auth": "none" if auth is None else ("ok" if auth == self.expected_auth else "bad"),
                 "status": status}
        with self.lock, self.log_path.open("a") as log:
            log.write(json.dumps(entry) + "\n")

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self._record(status)
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if self.headers.get("Authorization") != self.expected_auth:
            self._send(401, b"{}", {"WWW-Authenticate": 'Basic realm="hakube-registrylab"',
                                    "Content-Type": "application/json"})
            return
        if path == "/v2/":
            self._send(200, b"{}", {"Content-Type": "application/json"})
        elif "/manifests/" in path:
            self._send(200, self.manifest, {"Content-Type": MANIFEST_TYPE,
                                            "Docker-Content-Digest": _digest(self.manifest)})
        elif "/blobs/" in path and path.rsplit("/", 1)[1] in self.blobs:
            digest = path.rsplit("/", 1)[1]
            self._send(200, self.blobs[digest], {"Content-Type": "application/octet-stream",
                                                 "Docker-Content-Digest": digest})
        else:
            self._send(404, b"{}")

    do_HEAD = do_GET


def serve(args: argparse.Namespace) -> None:
    Registry.manifest, Registry.blobs = image()
    password = os.environ["REGISTRYLAB_PASSWORD"]
    Registry.expected_auth = "Basic " + base64.b64encode(f"{args.user}:{password}".encode()).decode()
    Registry.log_path = Path(args.log)
    server = ThreadingHTTPServer((args.address, args.port), Registry)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("serve")
    for name in ("address", "cert", "key", "user", "log"):
        run.add_argument(f"--{name}", required=True)
    run.add_argument("--port", type=int, required=True)
    serve(parser.parse_args())


if __name__ == "__main__":
    main()
