"""The HTTP messages a host hands to a component's exported handler, and gets back.

    HttpRequest("POST", "/items?id=3", headers=[("content-type", "text/plain")], body=b"hi")
    HttpResponse(status=200, headers=(("content-type", b"text/plain"),), body=b"ok")

These are plain values (frozen dataclasses), the same for a WASI 0.2 handler
(`wasi:http/incoming-handler`) and a 0.3 one (`wasi:http/handler`): the runtime turns a
request into the guest's resources and the guest's response back into a value. Header
names and values are checked here as `wasi:http/types.fields` requires (a name is an
HTTP token, a value has no control characters nor surrounding blanks), so a bad header
is refused before any wasm runs, with the header named.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

__all__ = ["HttpRequest", "HttpResponse", "Headers", "FORBIDDEN", "is_token", "valid_value", "checked_request"]

Headers = Tuple[Tuple[str, bytes], ...]

# Hop-by-hop headers the transport owns: a guest may not set them (as wasmtime's wasi-http
# refuses them too) and a request hands none of them to the guest.
FORBIDDEN = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host",
                       "http2-settings"})
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def is_token(text: str) -> bool:
    """An HTTP token (RFC 9110): what a header name or a method must be."""
    return bool(text) and all(c in _TOKEN for c in text)


def valid_value(value: bytes) -> bool:
    """A header field value: no control characters but tab, no leading or trailing blanks."""
    return all(b == 0x09 or 0x20 <= b != 0x7F for b in value) and value == value.strip(b" \t")


@dataclass(frozen=True)
class HttpRequest:
    """What a client sent: `path` is the path with its query (`/a/b?x=1`), header values
    are `str` (latin-1) or `bytes`, `authority` the `host[:port]` (None: the `host` header's,
    if any)."""

    method: str = "GET"
    path: str = "/"
    headers: Sequence[Tuple[str, Union[str, bytes]]] = ()
    body: bytes = b""
    scheme: str = "http"
    authority: Optional[str] = None


@dataclass(frozen=True)
class HttpResponse:
    """What the guest answered: header names as the guest spelled them, values as bytes;
    `trailers` None when the guest sent none."""

    status: int
    headers: Headers
    body: bytes
    trailers: Optional[Headers] = None

    def header(self, name: str) -> Optional[bytes]:
        """The values of header `name` (any case) joined by `, `, or None if absent."""
        key = name.lower()
        values = [v for n, v in self.headers if n.lower() == key]
        return b", ".join(values) if values else None


def _bad(what: str) -> ValueError:
    return ValueError(f"HttpRequest: {what}")


def checked_request(request: HttpRequest) -> Tuple[HttpRequest, List[Tuple[str, bytes]]]:
    """`request` with its authority filled in from a `host` header, and the headers the
    guest gets (hop-by-hop ones left out, values as bytes); ValueError or TypeError naming
    the field or header that WASI would refuse."""
    if not isinstance(request, HttpRequest):
        raise TypeError(f"expected a wasm_import.HttpRequest, got {type(request).__name__}")
    if not isinstance(request.method, str) or not is_token(request.method):
        raise _bad(f"method {request.method!r} is not an HTTP token")
    path = request.path
    if not isinstance(path, str) or not path or any(c.isspace() or ord(c) < 0x21 or ord(c) == 0x7F or c == "#"
                                                    for c in path):
        raise _bad(f"path {path!r} is not a path with query (no blanks, control characters or '#')")
    scheme = request.scheme
    if not (isinstance(scheme, str) and scheme and scheme[0].isalpha() and scheme.isascii()
            and all(c.isalnum() or c in "+-." for c in scheme)):
        raise _bad(f"scheme {scheme!r} is not a URI scheme")
    if not isinstance(request.body, (bytes, bytearray, memoryview)):
        raise TypeError(f"HttpRequest: body must be bytes, got {type(request.body).__name__}")
    headers: List[Tuple[str, bytes]] = []
    host: Optional[str] = None
    for i, item in enumerate(request.headers):
        try:
            name, value = item
        except (TypeError, ValueError):
            raise TypeError(f"HttpRequest: header {i} must be a (name, value) pair, got {item!r}") from None
        if not isinstance(name, str) or not is_token(name):
            raise _bad(f"header {i}: name {name!r} is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~)")
        if isinstance(value, str):
            try:
                raw = value.encode("latin-1")
            except UnicodeEncodeError:
                raise _bad(f"header {name!r}: value {value!r} is not latin-1 (pass bytes)") from None
        elif isinstance(value, (bytes, bytearray, memoryview)):
            raw = bytes(value)
        else:
            raise TypeError(f"HttpRequest: header {name!r}: value must be str or bytes, got {type(value).__name__}")
        if not valid_value(raw):
            raise _bad(f"header {name!r}: value {raw!r} has control characters or leading/trailing blanks")
        if name.lower() == "host":
            host = raw.decode("latin-1")
        if name.lower() not in FORBIDDEN:
            headers.append((name, raw))
    authority = request.authority if request.authority is not None else host
    if authority is not None and (not isinstance(authority, str) or not authority
                                  or any(c.isspace() or c in "/?#@" or ord(c) < 0x21 for c in authority)):
        raise _bad(f"authority {authority!r} is not host[:port]")
    if authority != request.authority:
        request = HttpRequest(request.method, path, request.headers, request.body, scheme, authority)
    return request, headers
