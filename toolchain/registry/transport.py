"""HTTP/1.1 for the registry client: :mod:`http.client` with pooled keep-alive connections.

Why not ``requests`` (the transport oras-py is built on, and what this client used before):
every ``gadget push/pull/copy`` is a new process, and importing ``requests`` (urllib3,
charset_normalizer, idna, certifi) takes ~100 ms on the project's CI machines, more than
``skopeo copy`` needs for a whole push of a sample gadget (issue #6 asks for <= 1.0 of it).
What the client needs from HTTP is small and all in the standard library: keep-alive
connections shared by the transfer threads, streamed bodies both ways, GET/HEAD redirects
(registries send blob downloads to object storage), TLS with the system CAs plus an extra
CA file, and the ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` variables.

Responses offer ``status_code``, ``headers`` (case-insensitive ``get``), ``iter_content``,
``content``, ``text``, ``json()`` and ``close()``. A response must be read to the end or
closed: a fully read body returns its connection to the pool, a half-read one closes it.
Failures without an HTTP answer raise :class:`ConnectError` (worth a retry) or
:class:`TLSError` (not).
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import os
import select
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote, unquote, urlencode, urljoin, urlsplit

from gadgetsmith.toolchain.errors import GadgetError

CHUNK = 1024 * 1024
MAX_REDIRECTS = 5
_DRAIN_LIMIT = 64 * 1024  # an unread body up to this size is read so the connection is kept
_IDLE_PER_HOST = 8


class TransportError(GadgetError):
    """No HTTP answer was had (see the subclasses)."""


class ConnectError(TransportError):
    """Connection refused, reset or timed out, or a body cut short: worth retrying."""


class TLSError(TransportError):
    """The TLS handshake failed (certificate, protocol): retrying does not help.
    ``plain_peer``: the answer was not TLS at all (the server speaks plain HTTP)."""

    def __init__(self, message: str, plain_peer: bool = False) -> None:
        super().__init__(message)
        self.plain_peer = plain_peer


def is_loopback(host: str) -> bool:
    """Whether ``host[:port]`` names this machine (127.0.0.0/8, ::1, localhost)."""
    name = _host_and_port(host)[0].lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _host_and_port(text: str) -> tuple[str, str]:
    """``host``, ``host:port``, ``[v6]``, ``[v6]:port`` or a bare IPv6 address (user info
    dropped) -> (host, port text, "" when there is none)."""
    text = text.rsplit("@", 1)[-1]
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else ""
    if text.count(":") == 1:
        host, port = text.split(":", 1)
        return host, port
    return text, ""


def _split_hostport(netloc: str, default_port: int) -> tuple[str, int]:
    host, port = _host_and_port(netloc)
    return host, int(port) if port else default_port


class _Proxy:
    def __init__(self, url: str) -> None:
        if "://" not in url:
            url = "http://" + url
        parts = urlsplit(url)
        if parts.scheme != "http":
            raise TransportError(
                f"proxy {url}: only http:// proxies are supported (CONNECT for https registries)"
            )
        self.host, self.port = _split_hostport(parts.netloc, 80)
        self.headers: dict[str, str] = {}
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self.headers["Proxy-Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()


def proxy_for(scheme: str, host: str, port: int,
              env: Mapping[str, str] | None = None) -> _Proxy | None:
    """The proxy for ``scheme://host:port`` from the environment, with the rules of Go's
    net/http (which docker, skopeo and ig use): ``HTTPS_PROXY``/``HTTP_PROXY`` (upper case
    first), and ``NO_PROXY`` entries that are ``*``, IP addresses, CIDR prefixes
    (``10.0.0.0/8``), domain names (the name and its subdomains) or ``.domain``/``*.domain``
    (subdomains only), each optionally with ``:port`` (``[v6]:port`` for IPv6). Loopback
    destinations are never proxied."""
    environ: Mapping[str, str] = os.environ if env is None else env

    def var(name: str) -> str:
        return environ.get(name.upper()) or environ.get(name.lower()) or ""

    url = var(f"{scheme}_proxy")
    if not url or is_loopback(host):
        return None
    name = host.lower().strip("[]").rstrip(".")
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        ip = None
    for entry in (e.strip().lower() for e in var("no_proxy").split(",")):
        if not entry:
            continue
        if entry == "*":
            return None
        e_host, p = _host_and_port(entry)
        e_port = int(p) if p.isdigit() else None
        if e_port is not None and e_port != port:
            continue
        if "/" in e_host:
            try:
                if ip is not None and ip in ipaddress.ip_network(e_host, strict=False):
                    return None
            except ValueError:
                pass
            continue
        if ip is not None:
            try:
                if ip == ipaddress.ip_address(e_host):
                    return None
            except ValueError:
                pass
            continue
        if e_host.startswith("*."):
            e_host = e_host[1:]
        if e_host.startswith("."):
            if name.endswith(e_host):
                return None
        elif name == e_host or name.endswith("." + e_host):
            return None
    return _Proxy(url)


class Response:
    """One HTTP answer; see the module docstring for its life cycle."""

    def __init__(self, raw: http.client.HTTPResponse, url: str,
                 release: Callable[[bool], None]) -> None:
        self._raw = raw
        self._release = release  # release(reusable: bool)
        self._content: bytes | None = None
        self._done = False
        self.status_code = raw.status
        self.reason = raw.reason
        self.headers = raw.msg  # http.client.HTTPMessage: get() is case-insensitive
        self.url = url
        self.version = raw.version  # 10 (HTTP/1.0) or 11

    def iter_content(self, chunk_size: int = CHUNK) -> Iterator[bytes]:
        if self._content is not None:
            for i in range(0, len(self._content), chunk_size):
                yield self._content[i:i + chunk_size]
            return
        if self._done:
            return
        try:
            while True:
                b = self._raw.read(chunk_size)
                if not b:
                    break
                yield b
        except (OSError, http.client.HTTPException) as e:
            self._finish(False)
            raise ConnectError(f"connection broken while reading the body: {_reason(e)}") from None
        missing = self._raw.length  # http.client's read(n) returns b"" at EOF without raising
        if missing:
            self._finish(False)
            raise ConnectError(f"connection broken: body cut short, {missing} bytes missing")
        self._finish(True)

    @property
    def content(self) -> bytes:
        if self._content is None:
            self._content = b"".join(self.iter_content())
        return self._content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)

    def close(self) -> None:
        if self._done:
            return
        length = self._raw.length
        if self._raw.isclosed() or (length is not None and length <= _DRAIN_LIMIT):
            try:
                self._raw.read()
            except (OSError, http.client.HTTPException):
                self._finish(False)
                return
            self._finish(True)
        else:
            self._finish(False)

    def _finish(self, complete: bool) -> None:
        if self._done:
            return
        self._done = True
        reusable = complete and not self._raw.will_close
        if not reusable:
            self._raw.close()
        self._release(reusable)

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: idle connections are pooled per (scheme, host, port)
_PoolKey = tuple[str, str, int]


class Transport:
    """A keep-alive connection pool; safe to share between threads."""

    def __init__(self, *, ca_file: str | None = None, timeout: float = 60.0,
                 user_agent: str = "gadgetsmith") -> None:
        self.ca_file = ca_file
        self.timeout = timeout
        self.user_agent = user_agent
        self._ssl: ssl.SSLContext | None = None
        self._idle: dict[_PoolKey, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()

    # -- connections ------------------------------------------------------------------
    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            ctx = ssl.create_default_context()  # system CAs (SSL_CERT_FILE/DIR), hostname check
            paths = ssl.get_default_verify_paths()
            if paths.cafile is None and paths.capath is None:
                # no system CA store (a slim image without ca-certificates): certifi's bundle,
                # which requests used, when it is installed
                try:
                    import certifi

                    ctx.load_verify_locations(cafile=certifi.where())
                except (ImportError, OSError):
                    pass
            if self.ca_file:
                try:
                    ctx.load_verify_locations(cafile=self.ca_file)
                except (OSError, ssl.SSLError) as e:
                    raise TLSError(f"cannot load CA file {self.ca_file}: {_reason(e)}") from None
            self._ssl = ctx
        return self._ssl

    def _connect(self, scheme: str, host: str, port: int) -> http.client.HTTPConnection:
        proxy = proxy_for(scheme, host, port)
        conn: http.client.HTTPConnection
        if proxy and scheme == "https" and ":" in host and sys.version_info < (3, 12):
            raise TransportError(
                f"cannot tunnel to the IPv6 address [{host}] through proxy {proxy.host}:{proxy.port} "
                "with Python 3.11's http.client: use the registry's host name, or add it to NO_PROXY"
            )
        if scheme == "https":
            if proxy:
                conn = http.client.HTTPSConnection(proxy.host, proxy.port, timeout=self.timeout,
                                                   context=self._ssl_context(), blocksize=CHUNK)
                conn.set_tunnel(host, port, headers=proxy.headers)
            else:
                conn = http.client.HTTPSConnection(host, port, timeout=self.timeout,
                                                   context=self._ssl_context(), blocksize=CHUNK)
        elif proxy:
            conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=self.timeout,
                                              blocksize=CHUNK)
            conn._gadget_proxy_headers = proxy.headers  # type: ignore[attr-defined]
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self.timeout, blocksize=CHUNK)
        conn._gadget_via = f"{proxy.host}:{proxy.port}" if proxy else ""  # type: ignore[attr-defined]
        return conn

    def _checkout(self, key: _PoolKey) -> tuple[http.client.HTTPConnection, bool]:
        while True:
            with self._lock:
                idle = self._idle.get(key)
                conn = idle.pop() if idle else None
            if conn is None:
                return self._connect(*key), False
            if not _dropped(conn):
                return conn, True
            conn.close()  # the server closed it while it was idle

    def _checkin(self, key: _PoolKey, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < _IDLE_PER_HOST:
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            conns = [c for cs in self._idle.values() for c in cs]
            self._idle.clear()
        for c in conns:
            c.close()

    # -- requests ---------------------------------------------------------------------
    def request(self, method: str, url: str, *, headers: dict[str, str] | None = None,
                body: Any = None, params: dict[str, Any] | None = None,
                form: dict[str, str] | None = None, allow_redirects: bool = False) -> Response:
        """Send one request and return its response (headers read, body not yet).

        ``body``: None, bytes, or a file-like object with ``read()`` (sent in 1 MiB blocks;
        give ``Content-Length`` in ``headers``). ``form``: sent url-encoded instead.
        ``params``: query parameters; a list value repeats the key.
        """
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params, doseq=True)
        hdrs = {"User-Agent": self.user_agent, "Accept-Encoding": "identity"}
        hdrs.update(headers or {})
        if form is not None:
            body = urlencode(form).encode()
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        if isinstance(body, bytes):
            hdrs["Content-Length"] = str(len(body))
        elif body is None and method in ("POST", "PUT", "PATCH"):
            hdrs["Content-Length"] = "0"
        for _ in range(MAX_REDIRECTS + 1):
            r = self._once(method, url, hdrs, body)
            if not (allow_redirects and r.status_code in (301, 302, 303, 307, 308)):
                return r
            location = r.headers.get("Location")
            if not location:
                return r
            r.close()
            # a Location may carry spaces or non-ASCII (object-storage keys): re-quote it,
            # leaving what is already percent-encoded alone
            new = urljoin(url, quote(location, safe="/%?=&:@!$'()*+,;~#[]"))
            old_p, new_p = urlsplit(url), urlsplit(new)
            if (new_p.scheme.lower(), new_p.netloc.lower()) != (old_p.scheme.lower(),
                                                                old_p.netloc.lower()):
                # like docker and requests: credentials stay with the registry host and
                # its scheme (never sent in clear after a redirect from https to http)
                hdrs = {k: v for k, v in hdrs.items() if k.lower() != "authorization"}
            url = new
        raise TransportError(f"{url}: more than {MAX_REDIRECTS} redirects")

    def _once(self, method: str, url: str, hdrs: dict[str, str], body: Any) -> Response:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise TransportError(f"{url}: unsupported URL scheme")
        host, port = _split_hostport(parts.netloc, 443 if scheme == "https" else 80)
        key = (scheme, host, port)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        replayable = body is None or isinstance(body, bytes)
        while True:
            conn, reused = self._checkout(key)
            target = path
            extra: dict[str, str] = {}
            proxy_headers = getattr(conn, "_gadget_proxy_headers", None)
            if proxy_headers is not None:  # plain HTTP through a proxy: absolute URI
                target = f"http://{parts.netloc}{path}"
                extra = proxy_headers
            try:
                try:
                    conn.request(method, target, body=body, headers={**hdrs, **extra})
                except (BrokenPipeError, ConnectionResetError) as send_error:
                    # the server may have answered (413, 401, 400 ...) and closed before
                    # reading the whole body: its answer is what the user needs to see
                    raw = _answer_despite(conn, send_error)
                else:
                    raw = conn.getresponse()
            except OSError as e:
                conn.close()
                via = getattr(conn, "_gadget_via", "")
                if _is_tls_error(e):
                    raise TLSError(_reason(e), plain_peer=_plain_peer(e)) from None
                if reused and replayable and isinstance(e, (ConnectionResetError, BrokenPipeError,
                                                            ConnectionAbortedError)):
                    # the server closed an idle keep-alive connection (RemoteDisconnected is a
                    # ConnectionResetError): send again on a new one
                    continue
                tunnel = str(e).startswith("Tunnel connection failed")
                if tunnel and (" 407" in str(e) or " 403" in str(e)):
                    raise TransportError(
                        f"proxy {via} refused the tunnel to {host}:{port} ({str(e).split(': ', 1)[-1]}): "
                        "check the credentials in HTTPS_PROXY (http://user:password@proxy:port), "
                        "or add the registry to NO_PROXY") from None
                raise ConnectError(_reason(e) + (f" (via proxy {via})" if via else "")) from None
            except http.client.HTTPException as e:
                conn.close()
                raise ConnectError(f"bad HTTP answer: {_reason(e)}") from None
            except BaseException:  # e.g. the body's source failed mid-request (copy)
                conn.close()
                raise

            def release(reusable: bool, conn: http.client.HTTPConnection = conn) -> None:
                if reusable:
                    self._checkin(key, conn)
                else:
                    conn.close()

            return Response(raw, url, release)


def _answer_despite(conn: http.client.HTTPConnection, send_error: OSError) -> http.client.HTTPResponse:
    """The response a server sent before it stopped reading our request, else the error."""
    try:
        raw = conn.getresponse()
    except (OSError, http.client.HTTPException):
        raise send_error from None
    raw.will_close = True  # the request was not sent whole: never reuse this connection
    return raw


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """Whether an idle keep-alive connection was closed by the server: an idle socket
    that is readable has either hit EOF or holds bytes nobody asked for."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _is_tls_error(e: BaseException) -> bool:
    return isinstance(e, ssl.SSLError)


def _plain_peer(e: BaseException) -> bool:
    """Whether a TLS error means the server answered in plain HTTP, not TLS."""
    reason = (getattr(e, "reason", None) or str(e)).replace("_", " ").lower()
    return "wrong version number" in reason or "record layer failure" in reason


def _reason(e: BaseException) -> str:
    """A short human reason for a socket/TLS/HTTP failure."""
    if isinstance(e, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {e.verify_message}"
    if isinstance(e, ssl.SSLError):
        reason = (e.reason or str(e)).replace("_", " ").lower()
        if "wrong version number" in reason or "record layer failure" in reason:
            return f"{reason}: the registry probably speaks plain HTTP"
        return reason
    if isinstance(e, socket.timeout):
        return "timed out"
    if isinstance(e, socket.gaierror):
        return f"cannot resolve the host name ({e.strerror})"
    if isinstance(e, http.client.RemoteDisconnected):
        return "the server closed the connection without an answer"
    if isinstance(e, http.client.IncompleteRead):
        return f"body cut short after {len(e.partial)} bytes"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


__all__ = ["CHUNK", "ConnectError", "Response", "TLSError", "Transport", "TransportError",
           "is_loopback", "proxy_for"]
