"""An HTTP client that hides nothing: every header is ours, every Set-Cookie is seen, no redirect
is followed, every request has a timeout. Plus a raw-socket path for requests http.client refuses
to build, and parsers for Set-Cookie and for the CGI's `env | sort` output.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
from dataclasses import dataclass

REQUEST_TIMEOUT_S = 10.0

HeaderValue = str | bytes


@dataclass
class SetCookie:
    name: str
    value: str
    attrs: dict[str, str | None]  # lower-cased attribute name -> value (None for flags)
    raw: str

    def has(self, attr: str) -> bool:
        return attr.lower() in self.attrs

    def get(self, attr: str) -> str | None:
        return self.attrs.get(attr.lower())


def parse_set_cookie(raw: str) -> SetCookie:
    parts = raw.split(";")
    name, sep, value = parts[0].strip().partition("=")
    if not sep:
        raise ValueError(f"Set-Cookie without '=': {raw!r}")
    attrs: dict[str, str | None] = {}
    for part in parts[1:]:
        part = part.strip()
        if not part:
            continue
        k, sep, v = part.partition("=")
        key = k.strip().lower()
        if key in attrs:
            raise ValueError(f"Set-Cookie repeats attribute {k!r}: {raw!r}")
        attrs[key] = v.strip() if sep else None
    return SetCookie(name=name.strip(), value=value.strip(), attrs=attrs, raw=raw)


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    request_line: str = ""

    def header(self, name: str) -> str | None:
        values = self.headers_all(name)
        if len(values) > 1:
            raise AssertionError(f"{name} appears {len(values)} times: {values}")
        return values[0] if values else None

    def headers_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def set_cookies(self) -> list[SetCookie]:
        return [parse_set_cookie(v) for v in self.headers_all("Set-Cookie")]

    def cookie(self, name: str) -> SetCookie | None:
        found = [c for c in self.set_cookies() if c.name == name]
        if len(found) > 1:
            raise AssertionError(f"cookie {name} set {len(found)} times: {[c.raw for c in found]}")
        return found[0] if found else None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        return json.loads(self.body)

    def env(self) -> dict[str, str]:
        """The CGI's environment (env.cgi prints `env | sort`)."""
        assert self.status == 200, f"expected the CGI's 200, got {self.status}: {self.text[:500]}"
        return parse_env(self.text)

    def describe(self) -> str:
        hdrs = "\n".join(f"  {k}: {v}" for k, v in self.headers)
        return f"{self.request_line} -> {self.status} {self.reason}\n{hdrs}\n  body: {self.body[:300]!r}"


def parse_env(text: str) -> dict[str, str]:
    env: dict[str, str] = {}
    last = None
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name and (name.replace("_", "a").isalnum()):
            env[name] = value
            last = name
        elif last is not None:  # a value that contained a newline
            env[last] += "\n" + line
    return env


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Client:
    """One new connection per request, `Connection: close`, nothing added behind our back
    except Host (unless given) and Content-Length for bodies."""

    def __init__(self, host: str, port: int, timeout_s: float = REQUEST_TIMEOUT_S,
                 source: str | None = None):
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        # Another loopback source address (127.0.0.2...): another client address for httpd.
        self.source = source

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def request(self, method: str, path: str, headers: dict[str, HeaderValue] | list | None = None,
                body: bytes | str | None = None, cookie: str | None = None,
                cookie_name: str = "memsession") -> Response:
        items: list[tuple[str, HeaderValue]] = list(headers.items() if isinstance(headers, dict)
                                                    else (headers or []))
        if cookie is not None:
            items.append(("Cookie", f"{cookie_name}={cookie}"))
        if not any(k.lower() == "host" for k, _ in items):
            items.insert(0, ("Host", f"{self.host}:{self.port}"))
        if not any(k.lower() == "connection" for k, _ in items):
            items.append(("Connection", "close"))
        if isinstance(body, str):
            body = body.encode()
        if body is not None and not any(k.lower() == "content-length" for k, _ in items):
            items.append(("Content-Length", str(len(body))))
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s,
                                          source_address=(self.source, 0) if self.source else None)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for k, v in items:
                conn.putheader(k, v)
            conn.endheaders(body)
            resp = conn.getresponse()
            data = resp.read()
            return Response(status=resp.status, reason=resp.reason, headers=resp.getheaders(),
                            body=data, request_line=f"{method} {path}")
        finally:
            conn.close()

    def get(self, path: str, **kw) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw) -> Response:
        return self.request("POST", path, **kw)

    def raw(self, data: bytes) -> Response:
        """Send bytes as they are; parse whatever comes back (connection closed by the server)."""
        with socket.create_connection((self.host, self.port), timeout=REQUEST_TIMEOUT_S) as s:
            s.sendall(data)
            chunks = []
            while True:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
        blob = b"".join(chunks)
        head, _, body = blob.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if not lines or not lines[0].startswith("HTTP/"):
            raise AssertionError(f"no HTTP response to raw request {data[:200]!r}: got {blob[:300]!r}")
        _, status, *reason = lines[0].split(" ", 2)
        headers = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:] if ":" in line]
        return Response(status=int(status), reason=reason[0] if reason else "", headers=headers,
                        body=body, request_line=data.split(b"\r\n", 1)[0].decode("latin-1"))


def location_path(r: Response, origin: str) -> str:
    """The redirect target as a path. A Location may be relative (`/app`) or absolute on this
    very origin (`http://127.0.0.1:PORT/app`): both mean the same to a browser, so both are
    returned as the path; any other absolute URL is returned whole (and will not equal a path)."""
    loc = r.header("Location")
    assert loc is not None, f"no Location header:\n{r.describe()}"
    if loc.startswith(origin + "/"):
        return loc[len(origin):]
    return loc


def backend_headers(r: Response) -> list[tuple[str, str]]:
    """The request headers the echo backend received (raw names, in order)."""
    assert r.status == 200, f"expected the backend's 200, got:\n{r.describe()}"
    return [(k, v) for k, v in r.json()["headers"]]
