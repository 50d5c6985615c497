"""A tiny HTTP(S) origin on loopback, in a thread, for the fetcher tests: it serves documents the test puts
in it and misbehaves on request (slow, silent, huge, redirecting, wrong type), counting every hit.
"""

from __future__ import annotations

import datetime
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Origin:
    base: str
    port: int
    documents: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    hosts: list[str] = field(default_factory=list)  # Host headers received
    sni: list[str | None] = field(default_factory=list)  # TLS server names received
    stop: threading.Event = field(default_factory=threading.Event)

    def put(self, path: str, body: bytes | str, content_type: str) -> str:
        self.documents[path] = (content_type, body.encode() if isinstance(body, str) else body)
        return self.base + path


def _handler(origin: Origin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _wait(self, seconds: float) -> None:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and not origin.stop.is_set():
                time.sleep(0.05)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            origin.hits[path] += 1
            origin.hosts.append(self.headers.get("Host", ""))
            with suppress(OSError):  # the fetcher hung up (by design)
                self._serve(path)

        def _send(self, status: int, ctype: str, body: bytes, **headers: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers.items():
                self.send_header(k.replace("_", "-"), v)
            self.end_headers()
            self.wfile.write(body)

        def _serve(self, path: str) -> None:
            if path in origin.documents:
                ctype, body = origin.documents[path]
                self._send(200, ctype, body)
            elif path == "/silent":  # accepts, then never answers
                self._wait(30)
            elif path == "/drip":  # headers at once, then one byte every 0.3 s: no single read times out
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "1000")
                self.end_headers()
                for _ in range(1000):
                    if origin.stop.is_set():
                        return
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    self._wait(0.3)
            elif path == "/huge-declared":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(50 * 1024 * 1024))
                self.end_headers()
                self.wfile.write(b"{" + b" " * 65536)
            elif path == "/huge-chunked":  # no length: the fetcher must stop reading by itself
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b" " * 16384
                for _ in range(5000):
                    if origin.stop.is_set():
                        return
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
            elif path.startswith("/redirect"):
                target = path[len("/redirect") :] or "/jwks"
                self.send_response(302)
                self.send_header("Location", target if target.startswith("http") else origin.base + target)
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif path == "/gzip":
                self._send(200, "application/json", b"\x1f\x8b" + b"\0" * 20, Content_Encoding="gzip")
            elif path == "/error":
                self._send(500, "application/json", b"{}")
            else:
                self._send(404, "text/plain", b"not found")

    return Handler


@contextmanager
def run_origin(tls: ssl.SSLContext | None = None, host_name: str = "127.0.0.1") -> Iterator[Origin]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    httpd.daemon_threads = True
    port = httpd.server_address[1]
    scheme = "https" if tls else "http"
    origin = Origin(base=f"{scheme}://{host_name}:{port}", port=port)
    httpd.RequestHandlerClass = _handler(origin)
    if tls is not None:
        tls.sni_callback = lambda sock, name, ctx: origin.sni.append(name)  # type: ignore[assignment]
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield origin
    finally:
        origin.stop.set()
        httpd.shutdown()
        httpd.server_close()


@dataclass
class Pki:
    ca_pem: bytes
    server: ssl.SSLContext

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cadata=self.ca_pem.decode())
        return ctx


def make_pki(tmp: Path, *names: str) -> Pki:
    """A throwaway CA and a server certificate for ``names`` (DNS subject alternative names)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jarmor test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "server.pem", tmp / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    return Pki(ca.public_bytes(serialization.Encoding.PEM), server)
