"""app/common/clients.py object_store: with ITS_MINIO_CA_FILE the client verifies the server
against that CA alone: a real TLS handshake on loopback with a certificate of a CA made here,
accepted with that CA and refused with another."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import urllib3

from app.common.clients import object_store_http
from app.common.settings import Settings


def _openssl(*args: str, cwd: Path) -> None:
    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed to make the test CA"
    subprocess.run([openssl, *args], cwd=cwd, check=True, capture_output=True)


def _ca(directory: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "1", "-subj", f"/CN={name}",
             cwd=directory)  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate it signed for 127.0.0.1, and an unrelated CA."""
    directory = tmp_path_factory.mktemp("pki")
    _ca(directory, "minio-ca")
    _ca(directory, "other-ca")
    (directory / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=minio", cwd=directory)  # fmt: skip
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "minio-ca.crt", "-CAkey", "minio-ca.key",
             "-CAcreateserial", "-out", "server.crt", "-days", "1", "-extfile", "san.cnf",
             cwd=directory)  # fmt: skip
    return directory


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def tls_server(pki: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / "server.crt", pki / "server.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_no_ca_file_keeps_minio_s_own_pool() -> None:
    assert object_store_http(Settings(minio_ca_file=None)) is None


def test_the_named_ca_is_trusted(pki: Path, tls_server: str) -> None:
    pool = object_store_http(Settings(minio_ca_file=pki / "minio-ca.crt"))
    assert pool is not None
    assert pool.request("GET", f"https://{tls_server}/", retries=False).data == b"ok"


def test_a_server_of_another_ca_is_refused(pki: Path, tls_server: str) -> None:
    pool = object_store_http(Settings(minio_ca_file=pki / "other-ca.crt"))
    assert pool is not None
    with pytest.raises(urllib3.exceptions.SSLError):
        pool.request("GET", f"https://{tls_server}/", retries=False)
