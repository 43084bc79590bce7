"""The server's front door: authentication before any body byte is read, and uploads streamed to disk.

`RequestGuard` is plain ASGI middleware in front of the app: a request without the bearer token is answered 401
before the app (or anything) reads its body, and a `POST` whose `Content-Length` exceeds the limit is answered 413
at once; both close the connection, so an unauthenticated 100 MB body costs the server no disk and no memory.

`read_form` parses `multipart/form-data` as it arrives (python-multipart's streaming parser): the file part goes
straight to its final path in chunks, the size limit is enforced while reading, small text fields are kept in
memory up to their own limit. Nothing is spooled to a temporary file first.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable

from python_multipart.multipart import MultipartParser, parse_options_header

Send = Callable[[dict[str, Any]], Awaitable[None]]


class BodyError(Exception):
    """A request body refused while reading it: HTTP status + one-line reason."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


async def _send_json(send: Send, status: int, detail: str, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *headers]})
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """ASGI middleware: bearer token on every path but `public`, and `Content-Length` limits per route, checked
    from the headers alone."""

    def __init__(self, app: Any, *, token: str, public: Iterable[str], body_limits: dict[tuple[str, str], int]) -> None:
        self.app, self.token, self.public, self.body_limits = app, token.encode(), frozenset(public), body_limits

    def _authorised(self, headers: dict[bytes, bytes]) -> bool:
        value = headers.get(b"authorization", b"")
        scheme, _, credentials = value.partition(b" ")
        return scheme.lower() == b"bearer" and secrets.compare_digest(credentials.strip(), self.token)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if scope["path"] not in self.public and not self._authorised(headers):
            return await _send_json(send, 401, "missing or wrong bearer token (send Authorization: Bearer <token>)",
                                    [(b"www-authenticate", b"Bearer")])
        limit = self.body_limits.get((scope["method"], scope["path"]))
        if limit is not None and b"content-length" in headers:
            try:
                length = int(headers[b"content-length"])
            except ValueError:
                return await _send_json(send, 400, "Content-Length is not a number")
            if length > limit:
                return await _send_json(send, 413, f"request body of {length} bytes is larger than the limit of "
                                                   f"{limit} bytes")
        return await self.app(scope, receive, send)


# ------------------------------------------------------------------------------------------------ multipart

@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    file: Path | None = None
    file_bytes: int = 0
    filename: str | None = None
    content_type: str | None = None


class _Part:
    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.name: str | None = None
        self.filename: str | None = None
        self.content_type = ""
        self.chunks: list[bytes] = []
        self.size = 0
        self.handle = None


async def read_form(stream: Any, content_type: str, *, file_field: str, allowed: set[str], max_file_bytes: int,
                    max_field_bytes: int, max_body_bytes: int,
                    file_path: Callable[[str, str | None], Path]) -> Form:
    """Parse a multipart body from an async byte stream. `file_path(content_type, filename)` names (or refuses,
    raising BodyError) the file part's destination; on any error the partial file is removed."""
    kind, options = parse_options_header(content_type or "")
    if kind == b"application/x-www-form-urlencoded":
        return await _read_urlencoded(stream, allowed=allowed - {file_field}, max_bytes=4 * max_field_bytes)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise BodyError(415, "send multipart/form-data (or application/x-www-form-urlencoded without a file); got "
                             f"{content_type or 'no content type'!r}")
    form, part = Form(), _Part()
    header_field, header_value = bytearray(), bytearray()
    ended = False

    def on_part_begin() -> None:
        nonlocal part
        part = _Part()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        part.headers[bytes(header_field).lower()] = bytes(header_value)
        header_field.clear(), header_value.clear()

    def on_headers_finished() -> None:
        disposition, params = parse_options_header(part.headers.get(b"content-disposition", b""))
        name = params.get(b"name")
        if disposition != b"form-data" or name is None:
            raise BodyError(400, "a multipart part has no Content-Disposition: form-data; name=...")
        part.name = name.decode("utf-8", "replace")
        if part.name not in allowed:
            raise BodyError(422, f"unknown form field {part.name[:40]!r}; send {', '.join(sorted(allowed))}")
        if part.name in form.fields or (part.name == file_field and form.file is not None):
            raise BodyError(422, f"form field {part.name!r} sent twice")
        filename = params.get(b"filename")
        part.filename = filename.decode("utf-8", "replace") if filename is not None else None
        part.content_type = part.headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
        if part.name == file_field:
            form.file = file_path(part.content_type, part.filename)
            form.filename, form.content_type = part.filename, part.content_type
            part.handle = form.file.open("wb", buffering=0)   # on disk as it arrives

    def on_part_data(data: bytes, start: int, end: int) -> None:
        part.size += end - start
        if part.handle is not None:
            if part.size > max_file_bytes:
                raise BodyError(413, f"upload larger than the limit of {max_file_bytes} bytes")
            part.handle.write(data[start:end])
        else:
            if part.size > max_field_bytes:
                raise BodyError(413, f"form field {part.name!r} is larger than {max_field_bytes} bytes")
            part.chunks.append(data[start:end])

    def on_part_end() -> None:
        if part.handle is not None:
            part.handle.close()
            part.handle = None
            form.file_bytes = part.size
            return
        try:
            form.fields[part.name] = b"".join(part.chunks).decode("utf-8")
        except UnicodeDecodeError:
            raise BodyError(422, f"form field {part.name!r} is not UTF-8 text") from None

    def on_end() -> None:
        nonlocal ended
        ended = True

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
        "on_part_end": on_part_end, "on_end": on_end})
    received = 0
    try:
        async for chunk in stream:
            received += len(chunk)
            if received > max_body_bytes:
                raise BodyError(413, f"request body larger than the limit of {max_body_bytes} bytes")
            if chunk:
                parser.write(chunk)
        if not ended:
            raise BodyError(400, "the multipart body ended before its closing boundary")
    except BodyError:
        _discard(part, form)
        raise
    except Exception as exc:  # noqa: BLE001 - the parser's own errors: a malformed body, not a server fault
        _discard(part, form)
        if type(exc).__name__ in ("MultipartParseError", "ParseError", "ClientDisconnect"):
            raise BodyError(400, f"malformed multipart body ({str(exc)[:80] or type(exc).__name__})") from None
        raise
    return form


async def _read_urlencoded(stream: Any, *, allowed: set[str], max_bytes: int) -> Form:
    """A form without a file (`curl -d clip_id=3 -d controls=...`): small, read whole, limit enforced."""
    from urllib.parse import parse_qsl
    body = bytearray()
    async for chunk in stream:
        body.extend(chunk)
        if len(body) > max_bytes:
            raise BodyError(413, f"form body larger than {max_bytes} bytes")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise BodyError(422, "the form body is not UTF-8 text") from None
    form = Form()
    for name, value in pairs:
        if name not in allowed:
            raise BodyError(422, f"unknown form field {name[:40]!r}; send {', '.join(sorted(allowed))} (a file needs "
                                 "multipart/form-data)")
        if name in form.fields:
            raise BodyError(422, f"form field {name!r} sent twice")
        form.fields[name] = value
    return form


def _discard(part: _Part, form: Form) -> None:
    if part.handle is not None:
        part.handle.close()
    if form.file is not None:
        form.file.unlink(missing_ok=True)
        form.file = None
