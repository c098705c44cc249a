"""The registry client's HTTP transport: proxies, redirects, keep-alive, against real servers."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest
from gadgetsmith.toolchain.registry.transport import ConnectError, Transport, proxy_for

from ..conftest import run_gadget
from ..registry_util import ForwardProxy, registry, registry_server  # noqa: F401 - fixtures
from .test_registry import make_image, store_digest

NO_PROXY_ENV = {"HTTP_PROXY": "", "HTTPS_PROXY": "", "http_proxy": "", "https_proxy": "",
                "NO_PROXY": "", "no_proxy": ""}


# ---------------------------------------------------------------------------- proxy selection
@pytest.mark.parametrize(("scheme", "host", "port", "env", "proxied"), [
    ("https", "reg.corp", 443, {"HTTPS_PROXY": "http://p:3128"}, True),
    ("https", "reg.corp", 443, {"https_proxy": "p:3128"}, True),
    ("http", "reg.corp", 80, {"HTTPS_PROXY": "http://p:3128"}, False),  # only http_proxy counts
    ("http", "reg.corp", 5000, {"HTTP_PROXY": "http://p:3128"}, True),
    ("https", "127.0.0.1", 5000, {"HTTPS_PROXY": "http://p:3128"}, False),  # loopback: never
    ("https", "localhost", 5000, {"HTTPS_PROXY": "http://p:3128"}, False),
    ("https", "::1", 5000, {"HTTPS_PROXY": "http://p:3128"}, False),
    ("https", "reg.corp", 443, {"HTTPS_PROXY": "http://p:3128", "NO_PROXY": "corp"}, False),
    ("https", "reg.corp", 443, {"HTTPS_PROXY": "http://p:3128", "NO_PROXY": ".corp"}, False),
    ("https", "reg.corp", 443, {"HTTPS_PROXY": "http://p:3128", "NO_PROXY": "*.corp"}, False),
    ("https", "reg.corp", 443, {"HTTPS_PROXY": "http://p:3128", "no_proxy": "x, reg.corp"}, False),
    ("https", "reg.corp", 443, {"HTTPS_PROXY": "http://p:3128", "NO_PROXY": "*"}, False),
    ("https", "evilreg.corp.io", 443, {"HTTPS_PROXY": "http://p:3128", "NO_PROXY": "reg.corp"}, True),
    ("https", "reg.corp.evil", 443, {"HTTPS_PROXY": "http://p:3128", "NO_PROXY": "reg.corp"}, True),
    ("https", "reg.corp", 5000, {"HTTPS_PROXY": "http://p:3128", "NO_PROXY": "reg.corp:443"}, True),
    ("https", "reg.corp", 443, {"HTTPS_PROXY": "http://p:3128", "NO_PROXY": "reg.corp:443"}, False),
    ("https", "corp", 443, {"HTTPS_PROXY": "http://p:3128", "NO_PROXY": ".corp"}, True),  # subdomains only
    ("https", "10.1.2.3", 5000, {"HTTPS_PROXY": "http://p:3128", "NO_PROXY": "10.0.0.0/8"}, False),
    ("https", "11.1.2.3", 5000, {"HTTPS_PROXY": "http://p:3128", "NO_PROXY": "10.0.0.0/8"}, True),
    ("https", "10.1.2.3", 5000, {"HTTPS_PROXY": "http://p:3128", "NO_PROXY": "10.1.2.3"}, False),
    ("https", "2001:db8::1", 5000, {"HTTPS_PROXY": "http://p:3128", "NO_PROXY": "[2001:db8::1]:5000"}, False),
    ("https", "2001:db8::1", 443, {"HTTPS_PROXY": "http://p:3128", "NO_PROXY": "[2001:db8::1]:5000"}, True),
    ("https", "2001:db8::1", 443, {"HTTPS_PROXY": "http://p:3128", "NO_PROXY": "2001:db8::/32"}, False),
    ("https", "reg.corp", 443, {"HTTPS_PROXY": "http://up:1", "https_proxy": "http://low:1"}, True),
])
def test_proxy_choice_follows_the_environment_like_go(scheme, host, port, env, proxied) -> None:
    assert (proxy_for(scheme, host, port, env) is not None) is proxied


def test_upper_case_proxy_variable_wins_like_go() -> None:
    p = proxy_for("https", "reg.corp", 443, {"HTTPS_PROXY": "http://up:1", "https_proxy": "http://low:2"})
    assert (p.host, p.port) == ("up", 1)


def test_proxy_credentials_become_a_proxy_authorization_header() -> None:
    p = proxy_for("https", "reg.corp", 443, {"HTTPS_PROXY": "http://us%40er:p%3Ass@p.corp:8080"})
    assert (p.host, p.port) == ("p.corp", 8080)
    import base64

    assert base64.b64decode(p.headers["Proxy-Authorization"].split()[1]) == b"us@er:p:ss"


def test_push_and_pull_through_a_forward_proxy(registry, tmp_path: Path) -> None:
    """A name only the proxy resolves: the transfer works through HTTP_PROXY and fails
    (one clear line) when NO_PROXY sends it around the proxy."""
    proxy = ForwardProxy({"registry.test": "127.0.0.1"})
    try:
        name = f"registry.test:{registry.port}"
        ref = f"{name}/obs/x:v1"
        digest = make_image(tmp_path / "s", ref)
        env = dict(NO_PROXY_ENV, HTTP_PROXY=proxy.url)
        run_gadget("push", ref, "--insecure-registries", name, store=tmp_path / "s", env=env)
        run_gadget("pull", ref, "--insecure-registries", name, store=tmp_path / "d", env=env)
        assert store_digest(tmp_path / "d", ref) == digest
        assert proxy.seen and all(t.startswith(f"http://{name}/v2/") for _, t in proxy.seen)

        res = run_gadget("pull", ref, "--insecure-registries", name, store=tmp_path / "e",
                         env=dict(env, NO_PROXY="registry.test"), check=False)
        assert res.returncode == 1 and "cannot resolve the host name" in res.stderr, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    finally:
        proxy.close()


def test_plain_http_registry_with_a_non_loopback_name_needs_insecure_registries(
        registry, tmp_path: Path) -> None:
    """Only loopback registries are spoken to in plain HTTP unasked: one that has another
    name is tried over TLS and the error names the flag."""
    proxy = ForwardProxy({"registry.test": "127.0.0.1"})
    try:
        name = f"registry.test:{registry.port}"
        ref = f"{name}/obs/x:v1"
        make_image(tmp_path / "s", ref)
        env = dict(NO_PROXY_ENV, HTTPS_PROXY=proxy.url)
        res = run_gadget("push", ref, store=tmp_path / "s", env=env, check=False)
        assert res.returncode == 1 and "Traceback" not in res.stderr, res
        line = res.stderr.strip()
        assert len(line.splitlines()) == 1 and "plain HTTP" in line, res
        assert f"--insecure-registries {name}" in line, res
    finally:
        proxy.close()


def test_https_registry_through_a_connect_tunnel(registry_server, tmp_path: Path) -> None:
    reg = registry_server(tls=True, cert_hosts=("registry.test",))
    proxy = ForwardProxy({"registry.test": "127.0.0.1"})
    try:
        ref = f"registry.test:{reg.port}/team/g:v1"
        digest = make_image(tmp_path / "s", ref)
        env = dict(NO_PROXY_ENV, HTTPS_PROXY=proxy.url)
        run_gadget("push", ref, "--ca-file", str(reg.ca_file), store=tmp_path / "s", env=env)
        run_gadget("pull", ref, "--ca-file", str(reg.ca_file), store=tmp_path / "d", env=env)
        assert store_digest(tmp_path / "d", ref) == digest
        assert ("CONNECT", f"registry.test:{reg.port}") in proxy.seen
        # the certificate is checked against the registry's name, not the proxy's
        res = run_gadget("pull", ref, store=tmp_path / "e", env=env, check=False)
        assert res.returncode == 1 and "certificate verify failed" in res.stderr, res.stderr
    finally:
        proxy.close()


def test_proxy_failures_name_the_proxy(registry_server, tmp_path: Path) -> None:
    reg = registry_server(tls=True, cert_hosts=("registry.test",))
    proxy = ForwardProxy({"registry.test": "127.0.0.1"}, auth="pu:pw")
    try:
        ref = f"registry.test:{reg.port}/team/g:v1"
        make_image(tmp_path / "s", ref)
        ca = ["--ca-file", str(reg.ca_file)]
        port = proxy.url.rsplit(":", 1)[1]
        # the tunnel is refused for want of credentials: said once, not retried
        res = run_gadget("push", ref, *ca, store=tmp_path / "s", check=False,
                         env=dict(NO_PROXY_ENV, HTTPS_PROXY=proxy.url))
        assert res.returncode == 1 and f"proxy 127.0.0.1:{port} refused the tunnel" in res.stderr
        assert "407" in res.stderr and "HTTPS_PROXY" in res.stderr, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1 and len(proxy.seen) == 1
        # with them in the proxy URL it works
        authed = proxy.url.replace("http://", "http://pu:pw@")
        run_gadget("push", ref, *ca, store=tmp_path / "s", env=dict(NO_PROXY_ENV, HTTPS_PROXY=authed))
        # a proxy that is down is named as such
        proxy.close()
        res = run_gadget("pull", ref, *ca, store=tmp_path / "d", check=False,
                         env=dict(NO_PROXY_ENV, HTTPS_PROXY=authed))
        assert res.returncode == 1 and f"via proxy 127.0.0.1:{port}" in res.stderr, res.stderr
    finally:
        proxy.close()


def test_plain_http_proxy_asking_for_credentials(registry, tmp_path: Path) -> None:
    proxy = ForwardProxy({"registry.test": "127.0.0.1"}, auth="pu:pw")
    try:
        name = f"registry.test:{registry.port}"
        ref = f"{name}/obs/x:v1"
        make_image(tmp_path / "s", ref)
        res = run_gadget("push", ref, "--insecure-registries", name, store=tmp_path / "s",
                         check=False, env=dict(NO_PROXY_ENV, HTTP_PROXY=proxy.url))
        assert res.returncode == 1 and "HTTP 407" in res.stderr and "HTTP_PROXY" in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    finally:
        proxy.close()


# ---------------------------------------------------------------------------- plain servers
class _Server:
    """A real HTTP/1.1 server on 127.0.0.1; ``answer(handler)`` writes each response."""

    def __init__(self, answer) -> None:
        outer = self
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.connections: set[int] = set()
        self.bodies: list[bytes] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a) -> None:
                pass

            def do_GET(self) -> None:
                outer.connections.add(self.client_address[1])
                outer.seen.append((self.command, self.path, dict(self.headers.items())))
                if self.command == "PUT":
                    outer.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                answer(self)

            do_PUT = do_GET

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _ok(h, body: bytes = b"hello", close: bool = False) -> None:
    h.send_response(200)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)
    h.close_connection = close  # without saying so: like a server's idle timeout


def test_cross_host_redirect_drops_the_authorization_header(monkeypatch) -> None:
    """Registries send blob downloads to object storage: the registry's credentials must
    not follow to another host, but a same-host redirect keeps them."""
    for var in NO_PROXY_ENV:
        monkeypatch.delenv(var, raising=False)
    storage = _Server(lambda h: _ok(h, b"blob-bytes"))

    def registry_answer(h) -> None:
        target = (f"http://localhost:{storage.port}/bucket/x" if h.path == "/away"
                  else f"http://localhost:{storage.port}/bucket/a b/ü?sig=x y" if h.path == "/odd"
                  else "/here-too")
        if h.path == "/here-too":
            return _ok(h, b"same-host")
        h.send_response(307)
        h.send_header("Location", target)
        h.send_header("Content-Length", "0")
        h.end_headers()

    reg = _Server(registry_answer)
    try:
        t = Transport()
        auth = {"Authorization": "Bearer secret-token"}
        r = t.request("GET", f"http://127.0.0.1:{reg.port}/away", headers=auth, allow_redirects=True)
        assert r.content == b"blob-bytes"
        assert reg.seen[0][2].get("Authorization") == "Bearer secret-token"
        assert "Authorization" not in storage.seen[0][2]
        r = t.request("GET", f"http://127.0.0.1:{reg.port}/here", headers=auth, allow_redirects=True)
        assert r.content == b"same-host"
        assert reg.seen[-1][2].get("Authorization") == "Bearer secret-token"
        # object-storage keys with spaces or non-ASCII in the Location are re-quoted
        r = t.request("GET", f"http://127.0.0.1:{reg.port}/odd", allow_redirects=True)
        assert r.content == b"blob-bytes"
        assert storage.seen[-1][1] == "/bucket/a%20b/%C3%BC?sig=x%20y"
        # without allow_redirects the 307 itself is the answer
        r = t.request("GET", f"http://127.0.0.1:{reg.port}/away", headers=auth)
        assert r.status_code == 307
        r.close()
    finally:
        reg.close()
        storage.close()


def test_keep_alive_reuses_one_connection_and_survives_an_idle_close() -> None:
    closing = {"next": False}

    def answer(h) -> None:
        _ok(h, b"x" * 100, close=closing["next"])

    srv = _Server(answer)
    try:
        t = Transport()
        url = f"http://127.0.0.1:{srv.port}/v2/"
        for _ in range(3):
            assert t.request("GET", url).content == b"x" * 100
        assert len(srv.connections) == 1
        closing["next"] = True  # the server drops the connection after its next answer
        assert t.request("GET", url).content == b"x" * 100
        closing["next"] = False
        # the pooled connection is dead now; the request is sent again on a new one
        assert t.request("GET", url).content == b"x" * 100
        assert len(srv.connections) == 2 and len(srv.seen) == 5
    finally:
        srv.close()


def test_body_cut_short_is_a_connect_error() -> None:
    def answer(h) -> None:
        h.send_response(200)
        h.send_header("Content-Length", "1000")
        h.end_headers()
        h.wfile.write(b"y" * 10)
        h.close_connection = True

    srv = _Server(answer)
    try:
        r = Transport().request("GET", f"http://127.0.0.1:{srv.port}/blob")
        with pytest.raises(ConnectError, match="cut short|connection broken"):
            for _ in r.iter_content(64):
                pass
    finally:
        srv.close()


def test_a_streamed_upload_never_goes_out_on_a_connection_the_server_closed() -> None:
    """A file body cannot be sent twice, so a pooled connection the server has closed
    while idle must be noticed before the request, not after."""
    import io

    srv = _Server(lambda h: _ok(h, b"ok", close=h.command == "GET"))
    try:
        t = Transport()
        base = f"http://127.0.0.1:{srv.port}"
        assert t.request("GET", f"{base}/v2/").content == b"ok"  # pooled, then closed
        import time

        time.sleep(0.2)  # the server's close reaches our idle socket
        body = io.BytesIO(b"z" * 300_000)
        r = t.request("PUT", f"{base}/upload", body=body, headers={"Content-Length": "300000"})
        assert r.status_code == 200 and r.content == b"ok"
        assert srv.bodies == [b"z" * 300_000] and len(srv.connections) == 2
    finally:
        srv.close()


def test_an_answer_sent_before_the_upload_was_read_is_shown() -> None:
    """A registry or proxy that refuses an upload (413, 401 ...) answers and closes without
    reading the body: the user sees that answer, not a broken pipe."""
    import io

    def refuse(h) -> None:
        body = b'{"errors":[{"code":"SIZE_INVALID","message":"too large"}]}'
        h.send_response(413)
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(body)
        h.wfile.flush()
        h.close_connection = True

    srv = _Server(refuse)
    srv.httpd.RequestHandlerClass.do_PUT = refuse  # answers without reading the body
    try:
        size = 32 * 1024 * 1024
        r = Transport().request("PUT", f"http://127.0.0.1:{srv.port}/v2/x/blobs/uploads/1",
                                body=io.BytesIO(bytes(size)), headers={"Content-Length": str(size)})
        assert r.status_code == 413 and b"SIZE_INVALID" in r.content
    finally:
        srv.close()


def test_two_test_cas_in_one_bundle_each_verify_their_server(tmp_path: Path) -> None:
    """SSL_CERT_FILE with the CAs of two test registries (the interop tests share one
    bundle between gadget and the Go tools): each server certificate finds its own CA."""
    import ssl
    import subprocess

    from ..registry_util import make_ca_and_cert

    made = [make_ca_and_cert(tmp_path / n) for n in ("one", "two")]
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("".join(ca.read_text() for ca, _, _ in made))
    for _, cert, _ in made:
        res = subprocess.run(["openssl", "verify", "-CAfile", str(bundle), str(cert)],
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stdout + res.stderr
    ctx = ssl.create_default_context(cafile=str(bundle))
    assert len(ctx.get_ca_certs()) == 2
