"""Connections that cannot outlast their welcome: header deadline, a connection cap, JSON protocol errors.

uvicorn (under BentoML 1.4) keeps a connection open for as long as the client likes until a first
request arrives, and has no deadline for the request head: idle sockets, or headers sent a byte at a
time, each hold a file descriptor forever, and at the process's open-file limit the server stops
accepting anyone (2,400 idle sockets did it at the default limit of 1,024, without any key).

:class:`GuardedProtocol` is uvicorn's own HTTP protocol (httptools when installed, else h11) with:

- a **head deadline**: a request head must be complete within :data:`HEAD_SECONDS` of the connection
  being opened or of the previous response (keep-alive); otherwise the connection is closed (with a
  JSON 408 when part of a head had arrived). uvicorn's keep-alive timeout (5 s) still closes idle
  keep-alive connections sooner;
- a **connection cap** per worker process, :func:`connection_cap` (below the open-file limit): a new
  connection over it closes the connection idle the longest (no request in progress), or itself when
  every connection is busy, so that a flood of idle sockets never locks real clients out;
- **protocol errors in the service's format**: malformed HTTP gets the JSON error body, not plain text;
- **a drain that keeps what was already sent** (SIGTERM, :mod:`serving.lifecycle`): before uvicorn closes
  its listening socket, the connections already queued in it are accepted (:func:`accept_queued`, up to
  :data:`QUEUE_SECONDS`), then new ones are refused (:func:`refuse_new`: otherwise the kernel keeps
  queueing them on the arbiter's copy of the socket and resets them when it exits), and a connection that has not yet sent its first request when the drain begins
  gets :data:`DRAIN_HEAD_SECONDS` to send it (then it is served and closed) instead of being closed at once,
  as uvicorn does: a request a client sent before the signal is answered, not reset.

BentoML builds uvicorn's configuration after it has imported the service and offers no option for
the protocol, so :func:`install` makes uvicorn's ``http="auto"`` (BentoML's choice) mean this class, in
the process that serves the service; :func:`raise_file_limit` lifts the soft open-file limit to the hard one.
"""

from __future__ import annotations

import logging
import resource
import time
from typing import Any

from churnclv.serving.errors import error_body

#: Seconds a client has to send a complete request head (from connecting, or after a response).
HEAD_SECONDS = 10.0
#: Connections per worker process at most; never within :data:`FILES_RESERVED` of the open-file limit.
MAX_CONNECTIONS = 4096
#: Open files kept for everything else a worker opens (model files, the score table, SQLite, logs).
FILES_RESERVED = 256
PROTOCOL = "churnclv.serving.connections:GuardedProtocol"
#: On a drain: seconds at most spent accepting connections already queued in the listening socket.
QUEUE_SECONDS = 0.3
#: On a drain: seconds a connection that has sent no complete request yet gets to send its first one.
DRAIN_HEAD_SECONDS = 1.0

log = logging.getLogger("churnclv.serving")


def raise_file_limit() -> int:
    """Raise this process's soft open-file limit to its hard limit (where allowed); the soft limit then."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 16)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft
        return target
    return soft


def connection_cap(file_limit: int | None = None) -> int:
    """Open connections allowed per worker: :data:`MAX_CONNECTIONS`, but :data:`FILES_RESERVED` below
    the open-file limit (768 at the common default of 1,024), and never below 32."""
    if file_limit is None:
        file_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if file_limit == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(32, min(MAX_CONNECTIONS, file_limit - FILES_RESERVED))


def raw_response(status: int, reason: str, code: str, message: str) -> bytes:
    """A complete HTTP/1.1 error response with our JSON body that closes the connection."""
    body = error_body(code, message)
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")
    return head.encode("ascii") + body


class _Deadlines:
    """Mixed into uvicorn's HTTP protocol class (see :class:`GuardedProtocol`)."""

    cap: int | None = None  # per process, computed at the first connection
    transport: Any
    connections: set
    cycle: Any
    loop: Any

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._idle_since, self._partial, self._head_timer = time.monotonic(), False, None
        self._served, self._draining = False, False
        self._arm()
        if _Deadlines.cap is None:
            _Deadlines.cap = connection_cap()
        if len(self.connections) > _Deadlines.cap:
            self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        self._partial = True
        super().data_received(data)  # type: ignore[misc]

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._served = True
        if not self.transport.is_closing():
            self._idle_since, self._partial = time.monotonic(), False
            self._arm()

    def send_400_response(self, msg: str) -> None:
        self._disarm()
        self.transport.write(raw_response(400, "Bad Request", "bad_request", f"malformed HTTP request: {msg}"))
        self.transport.close()

    # --- the drain (uvicorn calls shutdown() on every connection) ---------------------------------------

    def shutdown(self) -> None:
        """A connection whose first request is on its way (part of a head, or nothing yet on a new
        connection) gets :data:`DRAIN_HEAD_SECONDS` to send it; the rest as uvicorn does."""
        if self.cycle is None and (self._partial or not self._served) and not self.transport.is_closing():
            self._draining = True
            self._disarm()
            self._head_timer = self.loop.call_later(DRAIN_HEAD_SECONDS, self._head_deadline)
            return
        super().shutdown()  # type: ignore[misc]

    def on_headers_complete(self) -> None:
        super().on_headers_complete()  # type: ignore[misc]
        if self._draining and self.cycle is not None:
            self.cycle.keep_alive = False  # served, then closed

    # --- the head deadline ------------------------------------------------------------------------

    def _busy(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(HEAD_SECONDS, self._head_deadline)

    def _disarm(self) -> None:
        timer, self._head_timer = getattr(self, "_head_timer", None), None
        if timer is not None:
            timer.cancel()

    def _head_deadline(self) -> None:
        self._head_timer = None
        if self._busy() or self.transport.is_closing():
            return  # a request is being served; the response re-arms the deadline
        if self._partial:
            self.transport.write(raw_response(408, "Request Timeout", "request_timeout",
                                              f"the request head was not complete within {HEAD_SECONDS:g} seconds"))
        self.transport.close()

    # --- the connection cap -----------------------------------------------------------------------

    def _make_room(self) -> None:
        """Over the cap: close the connection idle the longest, or this one when all are busy."""
        idle = [c for c in self.connections if isinstance(c, _Deadlines) and c is not self and not c._busy()
                and not c.transport.is_closing()]
        victim = min(idle, key=lambda c: c._idle_since) if idle else self
        log.debug("over %d connections: closing %s", _Deadlines.cap, "an idle one" if idle else "the new one")
        victim._disarm()
        victim.transport.close()
        self.connections.discard(victim)  # counted out now, not when the loop gets round to it


def _protocol_class() -> type:
    try:
        import httptools  # noqa: F401
    except ImportError:
        from uvicorn.protocols.http.h11_impl import H11Protocol as base
    else:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    return type("GuardedProtocol", (_Deadlines, base), {"__module__": __name__, "__doc__": __doc__})


GuardedProtocol = _protocol_class()


def listening(servers: list) -> list[int]:
    """The file descriptors of the servers' listening sockets."""
    return [sock.fileno() for server in servers for sock in (getattr(server, "sockets", None) or ())]


async def accept_queued(servers: list, seconds: float = QUEUE_SECONDS) -> None:
    """Let the event loop accept the connections queued in the listening sockets (up to ``seconds``):
    closing a listening socket resets the connections still in its queue."""
    import asyncio
    import select

    fds = listening(servers)
    deadline = time.monotonic() + seconds
    while fds and time.monotonic() < deadline:
        try:
            readable, _, _ = select.select(fds, [], [], 0)
        except (OSError, ValueError):
            return
        if not readable:
            return
        await asyncio.sleep(0.005)


def refuse_new(servers: list) -> None:
    """Shut the listening sockets down for every process that shares them (new connections are then
    refused instead of queued until the server exits), when the whole server is stopping: the main
    process of ``churnclv serve`` has created the file named by CHURNCLV_STOP_FILE. A worker stopped
    alone keeps the socket for the one circus starts in its place."""
    import os
    import socket

    marker = os.environ.get("CHURNCLV_STOP_FILE")
    if not marker or not os.path.exists(marker):
        return
    for fd in listening(servers):
        try:
            with socket.socket(fileno=os.dup(fd)) as sock:
                sock.shutdown(socket.SHUT_RD)  # Linux: the listening socket stops listening, for all its holders
        except OSError:
            pass


def _draining_shutdown(original):
    async def shutdown(self, sockets=None):
        servers = list(getattr(self, "servers", []) or [])
        await accept_queued(servers)
        refuse_new(servers)
        return await original(self, sockets)

    shutdown.churnclv_drain = True
    return shutdown


def install() -> None:
    """Make uvicorn's ``http="auto"`` this module's :class:`GuardedProtocol` in this process, accept the
    queued connections before uvicorn's shutdown closes its listening sockets (idempotent), and raise the
    soft open-file limit to the hard one."""
    from uvicorn import Server, config

    config.HTTP_PROTOCOLS["auto"] = PROTOCOL
    if not getattr(Server.shutdown, "churnclv_drain", False):
        Server.shutdown = _draining_shutdown(Server.shutdown)
    raise_file_limit()
