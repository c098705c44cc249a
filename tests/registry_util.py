"""A real `docker-registry` (CNCF Distribution) on 127.0.0.1 for tests.

    with RegistryServer(tmp_path, tls=True, users={"ci": "s3cret"}) as reg:
        reg.host        # "127.0.0.1:PORT"
        reg.ca_file     # CA that signed the server certificate (TLS only)
        reg.stop(); reg.start()   # simulate an outage; storage and port are kept

Fixtures (import them into a test module or conftest): ``registry`` (plain HTTP),
``tls_registry`` (HTTPS with a CA generated here), ``auth_registry`` (HTTPS + htpasswd,
user ``ci`` / password ``s3cret``), and ``registry_server`` (factory).
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import os
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .conftest import need_tool, skip_or_fail

REGISTRY_BIN = "/usr/bin/docker-registry"
USER, PASSWORD = "ci", "s3cret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_ca_and_cert(directory: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
                     ) -> tuple[Path, Path, Path]:
    """Write ca.pem, server.pem, server.key (ECDSA P-256) and return their paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = _dt.datetime.now(_dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    # a name of its own: with two test CAs in one bundle (SSL_CERT_FILE), OpenSSL picks the
    # issuer by subject (and key identifier), and one shared name made it pick the wrong CA
    ca_name = x509.Name([x509.NameAttribute(
        NameOID.COMMON_NAME, f"gadgetsmith test CA {x509.random_serial_number():x}"[:64])])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(minutes=5)).not_valid_after(now + _dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(ca_ski, critical=False)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(minutes=5)).not_valid_after(now + _dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return ca_file, cert_file, key_file


def htpasswd_line(user: str, password: str) -> str:
    """A bcrypt htpasswd entry made by apache2-utils' htpasswd."""
    exe = need_tool("htpasswd")
    out = subprocess.run([exe, "-Bbn", user, password], capture_output=True, text=True, check=True)
    return out.stdout.strip() + "\n"


class RegistryServer:
    """One docker-registry process with its own storage, config and port."""

    def __init__(self, workdir: Path, *, tls: bool = False, users: dict[str, str] | None = None,
                 port: int | None = None, token: TokenServer | None = None,
                 cert_hosts: tuple[str, ...] = ()) -> None:
        if not Path(REGISTRY_BIN).exists():
            skip_or_fail(f"{REGISTRY_BIN} is missing (Debian package docker-registry; run `make setup`)")
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tls = tls
        self.users = dict(users or {})
        self.port = port or free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.storage = self.dir / "storage"
        self.storage.mkdir(exist_ok=True)
        self.ca_file: Path | None = None
        self.log = self.dir / "registry.log"
        self.proc: subprocess.Popen | None = None
        lines = [
            "version: 0.1",
            "log: {level: warn}",
            f"storage: {{filesystem: {{rootdirectory: {self.storage}}}, delete: {{enabled: true}}}}",
        ]
        http = f"http: {{addr: {self.host}"
        if tls:
            self.ca_file, cert, key = make_ca_and_cert(self.dir / "tls",
                                                       ("127.0.0.1", "localhost", *cert_hosts))
            http += f", tls: {{certificate: {cert}, key: {key}}}"
        lines.append(http + "}")
        self.token = token
        if token is not None:
            lines.append(
                f"auth: {{token: {{realm: '{token.realm}', service: {token.service}, "
                f"issuer: {token.issuer}, rootcertbundle: {token.cert_file}}}}}"
            )
        elif self.users:
            pw = self.dir / "htpasswd"
            pw.write_text("".join(htpasswd_line(u, p) for u, p in self.users.items()))
            lines.append(f"auth: {{htpasswd: {{realm: gadgetsmith-test, path: {pw}}}}}")
        self.config = self.dir / "config.yml"
        self.config.write_text("\n".join(lines) + "\n")

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def client_args(self) -> list[str]:
        """`gadget` flags that reach this registry (not the credentials)."""
        if self.tls:
            return ["--ca-file", str(self.ca_file)]
        return ["--insecure-registries", self.host]

    def start(self, timeout: float = 15.0) -> RegistryServer:
        if self.proc is not None and self.proc.poll() is None:
            return self
        logf = open(self.log, "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", str(self.config)],
                                     stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        ctx = ssl.create_default_context(cafile=str(self.ca_file)) if self.tls else None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {self.log.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{self.url}/v2/", timeout=1, context=ctx)
                return self
            except urllib.error.HTTPError as e:
                if e.code == 401:
                    return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"docker-registry did not start on {self.host}: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class TokenServer:
    """A Docker-style token server (bearer flow) for docker-registry's ``auth: token``.

    ``GET /token?service=..&scope=..`` with Basic credentials, or ``POST /token`` with
    ``grant_type=refresh_token``, returns a JWT (ES256, certificate in the ``x5c`` header)
    granting the requested actions to a known user; wrong credentials get 401.
    ``requests`` records (method, user, scopes) of every call.
    """

    service, issuer = "gadgetsmith-test-registry", "gadgetsmith-test-issuer"

    def __init__(self, workdir: Path, users: dict[str, str], refresh_tokens: dict[str, str] | None = None):
        import base64
        import http.server
        import json
        import threading
        import urllib.parse

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
        from cryptography.x509.oid import NameOID

        workdir.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token signer")])
        now = _dt.datetime.now(_dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - _dt.timedelta(minutes=5))
                .not_valid_after(now + _dt.timedelta(days=1)).sign(key, hashes.SHA256()))
        self.cert_file = workdir / "token-signer.pem"
        self.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self.requests: list[tuple[str, str, list[str]]] = []
        outer = self

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        def make_token(user: str, scopes: list[str]) -> str:
            access = []
            for sc in scopes:
                for one in sc.split(" "):
                    parts = one.split(":")
                    if len(parts) >= 3:
                        access.append({"type": parts[0], "name": ":".join(parts[1:-1]),
                                       "actions": parts[-1].split(",")})
            t = int(time.time())
            header = {"typ": "JWT", "alg": "ES256", "x5c": [x5c]}
            claims = {"iss": outer.issuer, "sub": user, "aud": outer.service, "exp": t + 300,
                      "nbf": t - 10, "iat": t, "jti": os.urandom(8).hex(), "access": access}
            signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
            r, s_ = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
            return f"{signing_input}.{b64(r.to_bytes(32, 'big') + s_.to_bytes(32, 'big'))}"

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a) -> None:
                pass

            def _answer(self, user: str | None, scopes: list[str]) -> None:
                outer.requests.append((self.command, user or "", scopes))
                if user is None:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"token": make_token(user, scopes), "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                user = None
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
                    user = u if users.get(u) == p else None
                self._answer(user, q.get("scope", []))

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(n).decode())
                rt = (form.get("refresh_token") or [""])[0]
                user = (refresh_tokens or {}).get(rt) if form.get("grant_type") == ["refresh_token"] else None
                self._answer(user, (form.get("scope") or [""])[0].split(" ") if form.get("scope") else [])

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.realm = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def registry_server(tmp_path_factory):
    """Factory: ``registry_server(tls=..., users=...)``; every server is stopped at the end."""
    servers: list[RegistryServer] = []

    def make(**kw) -> RegistryServer:
        srv = RegistryServer(tmp_path_factory.mktemp("registry"), **kw).start()
        servers.append(srv)
        return srv

    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def registry(registry_server) -> RegistryServer:
    return registry_server()


@pytest.fixture
def tls_registry(registry_server) -> RegistryServer:
    return registry_server(tls=True)


@pytest.fixture
def auth_registry(registry_server) -> RegistryServer:
    return registry_server(tls=True, users={USER: PASSWORD})


class FaultProxy:
    """A small HTTP proxy in front of a plain-HTTP registry that injects faults.

    ``hook(method, path)`` is called for every request and returns ``None`` (forward),
    ``"corrupt"`` (forward, then flip the last byte of the response body) or
    ``"drop"`` (close the connection without an answer) or ``"cut"`` (send the answer's
    headers and half of its body, then close the connection) or an HTTP status to answer
    instead of the registry (e.g. 503, 429). The hook may also stop the
    upstream registry to simulate an outage in the middle of a transfer.
    """

    def __init__(self, upstream: str, hook) -> None:
        import http.client
        import http.server
        import threading

        proxy = self
        self.upstream = upstream
        self.hook = hook
        self.requests: list[tuple[str, str]] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a) -> None:
                pass

            def _any(self) -> None:
                proxy.requests.append((self.command, self.path))
                action = proxy.hook(self.command, self.path)
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                if action == "drop":
                    self.close_connection = True
                    return
                if isinstance(action, int):
                    self.send_response(action)
                    self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                host, port = proxy.upstream.split(":")
                try:
                    conn = http.client.HTTPConnection(host, int(port), timeout=30)
                    conn.request(self.command, self.path, body=body,
                                 headers={k: v for k, v in self.headers.items()})
                    resp = conn.getresponse()
                    data = resp.read()
                except OSError:
                    self.close_connection = True
                    return
                if action == "corrupt" and data:
                    data = data[:-1] + bytes([data[-1] ^ 0xFF])
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if action == "cut":
                    self.wfile.write(data[:len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                elif self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class ForwardProxy:
    """An HTTP forward proxy, as a corporate network has: ``CONNECT host:port`` tunnels (for
    https registries) and absolute-URI requests (for plain HTTP ones), relayed byte for byte.

    ``names`` maps host names only the proxy can resolve to addresses (``{"registry.test":
    "127.0.0.1"}``), so a client that bypasses the proxy fails to resolve them. ``seen``
    records (method, request target) of every connection's first request. With ``auth``
    ("user:password") a request without those Proxy-Authorization credentials gets 407.
    """

    def __init__(self, names: dict[str, str], auth: str | None = None) -> None:
        import threading

        self.names = dict(names)
        self.auth = auth
        self.seen: list[tuple[str, str]] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._threads = threading
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self._threads.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c: socket.socket) -> None:
        from urllib.parse import urlsplit

        buf = b""
        try:
            while b"\r\n\r\n" not in buf:
                chunk = c.recv(65536)
                if not chunk:
                    return c.close()
                buf += chunk
            method, target, _ = buf.split(b"\r\n", 1)[0].decode().split(" ", 2)
            self.seen.append((method, target))
            if self.auth is not None:
                import base64

                want = b"proxy-authorization: basic " + base64.b64encode(self.auth.encode()).lower()
                if want not in buf.split(b"\r\n\r\n", 1)[0].lower():
                    c.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                              b"Proxy-Authenticate: Basic realm=\"test\"\r\n"
                              b"Content-Length: 0\r\nConnection: close\r\n\r\n")
                    return c.close()
            if method == "CONNECT":
                host, port = target.rsplit(":", 1)
                up = socket.create_connection((self.names.get(host, host), int(port)), timeout=30)
                c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                buf = buf.split(b"\r\n\r\n", 1)[1]
            else:
                u = urlsplit(target)
                up = socket.create_connection((self.names.get(u.hostname, u.hostname), u.port or 80),
                                              timeout=30)
        except (OSError, ValueError):
            c.close()
            return
        if buf:
            up.sendall(buf)

        def pipe(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        self._threads.Thread(target=pipe, args=(up, c), daemon=True).start()
        pipe(c, up)

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() that close() alone would not
        except OSError:
            pass
        self.sock.close()
