"""ASGI guards around the API app: a body size limit and body read timeout,
and the security headers every answer carries.

`RequestGuard` reads the request body before anything else runs, up to
`max_body_bytes` (413 past it, from the Content-Length alone when one is
given, nothing read past the limit) and within `body_timeout_seconds` from
the first byte asked for (408 past it: a client trickling its body holds a
connection no longer than that). The app then gets the buffered body. The
limit is small (64 KiB by default): the largest real request, a 5-Why with
its corrective actions or an engine record, is a few KiB.

`SecurityHeaders` adds `X-Content-Type-Options: nosniff`, `Cache-Control:
no-store`, `Content-Security-Policy: default-src 'self'; frame-ancestors
'none'` (what a console served from the same origin can keep), and
`Referrer-Policy: no-referrer` to every answer that does not set them
(`same-origin` on the console's pages, whose forms are checked by Origin).
"""

from __future__ import annotations

import asyncio
import time

import orjson

SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
    (b"content-security-policy", b"default-src 'self'; frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
)


async def _answer(send, status: int, detail: str) -> None:
    body = orjson.dumps({"detail": detail})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """See the module docstring. `max_body_bytes` > 0, `body_timeout_seconds` > 0."""

    def __init__(self, app, *, max_body_bytes: int = 64 * 1024, body_timeout_seconds: float = 10.0):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout_seconds = body_timeout_seconds

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or ())
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                return await _answer(send, 400, "Content-Length is not a number")
            if int(declared) > self.max_body_bytes:
                return await _answer(send, 413, f"request body of {int(declared)} bytes is larger than the "
                                                f"{self.max_body_bytes} bytes allowed")
        chunks: list[bytes] = []
        size = 0
        deadline = time.monotonic() + self.body_timeout_seconds
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0.001))
            except asyncio.TimeoutError:
                return await _answer(send, 408, f"request body not received within {self.body_timeout_seconds:g} s")
            if message["type"] == "http.disconnect":
                return None  # the client left: nothing to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return await _answer(send, 413, f"request body larger than the {self.max_body_bytes} bytes allowed")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def buffered():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, buffered, send)


class SecurityHeaders:
    """See the module docstring."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        path = scope.get("path", "")
        # The console's pages keep the referrer on this site: with
        # `no-referrer` a browser sends `Origin: null` on every form post, and
        # the console could no longer tell its own forms from another site's.
        console = path == "/" or path == "/console" or path.startswith("/console/")

        async def with_headers(message):
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", ())}
                if console:
                    present.add(b"referrer-policy")
                    extra = [(b"referrer-policy", b"same-origin")]
                else:
                    extra = []
                message = {**message, "headers": [*message.get("headers", ()), *extra,
                                                  *((k, v) for k, v in SECURITY_HEADERS if k not in present)]}
            await send(message)

        return await self.app(scope, receive, with_headers)
