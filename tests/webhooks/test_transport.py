"""The pinned connection: the socket goes to the checked address, Host and TLS use the URL's name."""

import datetime
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from webhooks.addresses import Target
from webhooks.transport import SendError, post


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for the name "localhost" (and no IP address)."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return folder / "cert.pem", folder / "key.pem"


@pytest.fixture
def tls_server(certificate):
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append((self.headers["Host"], self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(302)  # a redirect is an answer, never followed
            self.send_header("Location", "http://169.254.169.254/")
            self.end_headers()

        def log_message(self, format, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield server.server_address[1], seen
    server.shutdown()
    server.server_close()


def trusting(cafile):
    real = ssl.create_default_context
    return lambda *args, **kwargs: real(cafile=str(cafile))


def test_it_connects_to_the_checked_address_with_tls_for_the_urls_name(tls_server, certificate, monkeypatch):
    port, seen = tls_server
    monkeypatch.setattr(ssl, "create_default_context", trusting(certificate[0]))
    target = Target(scheme="https", host="localhost", port=port, path="/in", addresses=("127.0.0.1",))
    answer = post(target, body=b'{"a":1}', headers={}, timeout=5)
    assert answer.status == 302  # not followed
    assert seen == [(f"localhost:{port}", b'{"a":1}')]


def test_it_refuses_a_certificate_for_another_name(tls_server, certificate, monkeypatch):
    port, seen = tls_server
    monkeypatch.setattr(ssl, "create_default_context", trusting(certificate[0]))
    target = Target(scheme="https", host="hooks.example.com", port=port, path="/", addresses=("127.0.0.1",))
    with pytest.raises(SendError, match="certificate"):
        post(target, body=b"{}", headers={}, timeout=5)
    assert seen == []


def test_it_tries_the_next_address_when_one_refuses(tls_server, certificate, monkeypatch):
    port, seen = tls_server  # listening on 127.0.0.1 only: 127.0.0.2 refuses the connection
    monkeypatch.setattr(ssl, "create_default_context", trusting(certificate[0]))
    target = Target(
        scheme="https", host="localhost", port=port, path="/", addresses=("127.0.0.2", "127.0.0.1")
    )
    assert post(target, body=b"{}", headers={}, timeout=5).status == 302 and len(seen) == 1


def test_it_says_why_no_address_answered(monkeypatch):
    import socket

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    target = Target(scheme="http", host="localhost", port=port, path="/", addresses=("127.0.0.1",))
    with pytest.raises(SendError, match="could not connect to localhost"):
        post(target, body=b"{}", headers={}, timeout=5)
