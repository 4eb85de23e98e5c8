"""The local endpoint server's limits: request framing, timeouts, the connection cap and its log.

Beside ``local_endpoint.py`` (which imports it): what keeps one client from starving or crashing
the server. Standalone: imports nothing from the Airflow provider.

Settings (environment variables of the server process; a value that is not a number in range is
refused at start-up, before the port is taken):

- ``AG_ENDPOINT_POLL_MICROSECONDS`` (1000): how long an idle server polls a kept-alive connection.
- ``AG_ENDPOINT_IDLE_TIMEOUT_SECONDS`` (60): a connection waiting for its next request is closed after this.
- ``AG_ENDPOINT_REQUEST_TIMEOUT_SECONDS`` (60): the headers and body of one request must arrive within this.
- ``AG_ENDPOINT_MAX_CONNECTIONS`` (1000): open connections per server process; beyond it the
  longest-idle connection is closed, or, if none is idle, the new one is answered 503.
- ``AG_ENDPOINT_LOG_MAX_BYTES`` (10 MiB): ``endpoint.log`` is rotated to ``endpoint.log.1`` past this.
"""

from __future__ import annotations

import io
import math
import os
import re
import socket
import sys
import threading
import time
from typing import Any

POLL_MICROSECONDS_ENV = "AG_ENDPOINT_POLL_MICROSECONDS"
DEFAULT_POLL_MICROSECONDS = 1000
IDLE_TIMEOUT_ENV = "AG_ENDPOINT_IDLE_TIMEOUT_SECONDS"
REQUEST_TIMEOUT_ENV = "AG_ENDPOINT_REQUEST_TIMEOUT_SECONDS"
MAX_CONNECTIONS_ENV = "AG_ENDPOINT_MAX_CONNECTIONS"
LOG_MAX_BYTES_ENV = "AG_ENDPOINT_LOG_MAX_BYTES"
DEFAULTS = {
    IDLE_TIMEOUT_ENV: 60.0,
    REQUEST_TIMEOUT_ENV: 60.0,
    MAX_CONNECTIONS_ENV: 1000,
    LOG_MAX_BYTES_ENV: 10 * 1024 * 1024,
}
#: Client-controlled text (paths, names, header values) is cut to this many characters in the log.
LOG_TEXT_CHARS = 200
_DIGITS = re.compile(r"[0-9]{1,18}")
_SERVICE_UNAVAILABLE = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b"Content-Length: %d\r\n\r\n%s"
)


def _number_from_env(name: str, default: float, minimum: float, integer: bool = False) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(int(raw)) if integer else float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= minimum):
        kind = "a whole number" if integer else "a number"
        raise ValueError(f"{name}={raw!r}: expected {kind}, {minimum:g} or more (default {default:g})")
    return value


def poll_seconds_from_env() -> float:
    """``AG_ENDPOINT_POLL_MICROSECONDS`` in seconds; a value that is not a number of 0 or more is refused."""
    raw = os.environ.get(POLL_MICROSECONDS_ENV, "").strip()
    try:
        return _number_from_env(POLL_MICROSECONDS_ENV, DEFAULT_POLL_MICROSECONDS, 0) / 1e6
    except ValueError:
        raise ValueError(
            f"{POLL_MICROSECONDS_ENV}={raw!r}: expected a number of microseconds, 0 or more "
            f"(default {DEFAULT_POLL_MICROSECONDS}; 0 turns polling off)"
        ) from None


class Limits:
    """The server's limits, read from the environment (see the module's docstring)."""

    def __init__(self) -> None:
        self.poll_seconds = poll_seconds_from_env()
        self.idle_timeout = _number_from_env(IDLE_TIMEOUT_ENV, DEFAULTS[IDLE_TIMEOUT_ENV], 0.01)
        self.request_timeout = _number_from_env(REQUEST_TIMEOUT_ENV, DEFAULTS[REQUEST_TIMEOUT_ENV], 0.01)
        self.max_connections = int(_number_from_env(MAX_CONNECTIONS_ENV, DEFAULTS[MAX_CONNECTIONS_ENV], 1, True))
        self.log_max_bytes = int(_number_from_env(LOG_MAX_BYTES_ENV, DEFAULTS[LOG_MAX_BYTES_ENV], 4096, True))


def clip(text: object, limit: int = LOG_TEXT_CHARS) -> str:
    """``text`` cut to ``limit`` characters (what a client sent goes into the log only this long)."""
    value = str(text)
    return value if len(value) <= limit else f"{value[:limit]}...[{len(value) - limit} more characters]"


def content_length(values: list[str] | None) -> int | None:
    """The body length the ``Content-Length`` header(s) give: ``None`` if absent.

    :raises ValueError: unless there is exactly one value made only of ASCII digits (no sign, no
        ``_``, no spaces inside, no second header): a message a proxy could frame differently.
    """
    if not values:
        return None
    if len(values) > 1:
        raise ValueError("more than one Content-Length header")
    value = values[0].strip(" \t")
    if not _DIGITS.fullmatch(value):
        raise ValueError(f"Content-Length {clip(values[0], 40)!r} is not a number of bytes")
    return int(value)


class DeadlineSocketReader(io.RawIOBase):
    """A socket's reading side that gives up at a deadline, however slowly the bytes trickle in.

    A socket timeout alone bounds each ``recv``; a client sending a byte just inside it would hold
    the connection forever. Each ``recv`` here also checks the deadline for the whole request.
    """

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.sock = sock
        self.deadline = math.inf

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if time.monotonic() > self.deadline:
            raise TimeoutError("the request did not arrive in time")
        return self.sock.recv_into(buffer)


class ConnectionTracker:
    """The open connections of one server process, capped.

    A connection is *idle* while it waits for a request line (a new or kept-alive connection).
    At the cap, the connection idle the longest is closed to make room (any HTTP client may see a
    kept-alive connection closed); if every connection is in a request, the new one gets a 503.
    """

    def __init__(self, max_connections: int) -> None:
        self.max_connections = max_connections
        self._lock = threading.Lock()
        self._idle: dict[socket.socket, None] = {}  # in the order they became idle
        self._busy: set[socket.socket] = set()

    def __len__(self) -> int:
        with self._lock:
            return len(self._idle) + len(self._busy)

    @property
    def in_requests(self) -> int:
        """Connections whose request line has arrived and whose request is not yet answered."""
        with self._lock:
            return len(self._busy)

    def admit(self, sock: socket.socket) -> bool:
        """Count a new connection in (as idle), closing the longest-idle one if at the cap."""
        victim = None
        with self._lock:
            if len(self._idle) + len(self._busy) >= self.max_connections:
                if not self._idle:
                    return False
                victim = next(iter(self._idle))
                del self._idle[victim]
            self._idle[sock] = None
        if victim is not None:
            try:
                victim.shutdown(socket.SHUT_RDWR)  # its thread sees the end of the stream and leaves
            except OSError:
                pass
        return True

    def busy(self, sock: socket.socket) -> bool:
        """A request line arrived; ``False`` if the connection was closed to make room meanwhile."""
        with self._lock:
            if sock not in self._idle:
                return False
            del self._idle[sock]
            self._busy.add(sock)
            return True

    def idle(self, sock: socket.socket) -> None:
        with self._lock:
            self._busy.discard(sock)
            self._idle[sock] = None

    def forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._busy.discard(sock)
            self._idle.pop(sock, None)


def refuse_connection(sock: socket.socket, open_connections: int) -> None:
    """Answer a connection over the cap with a 503 and close it (never blocks: the answer is small)."""
    body = b'{"message": "the endpoint has too many open connections (%d); retry shortly"}' % open_connections
    try:
        sock.settimeout(1.0)
        sock.sendall(_SERVICE_UNAVAILABLE % (len(body), body))
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def raise_open_files_limit(wanted: int) -> int:
    """Raise this process's soft limit on open files towards ``wanted`` (up to the hard limit).

    :return: the soft limit now in force.
    """
    try:
        import resource
    except ImportError:  # not on this platform: leave it
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return wanted if soft == resource.RLIM_INFINITY else int(soft)


class RotatingLog:
    """Keeps the server's log (its stdout and stderr, a file) under a size: past ``max_bytes`` the
    file is renamed to ``<name>.1`` (replacing the one before) and a fresh one takes its place.

    :param path: the log file this process's stdout and stderr write to (``None``: not rotated).
    """

    def __init__(self, path: str | None, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        """Write one line (a traceback too) to the log, rotating it first if it is full."""
        with self._lock:
            self._rotate_if_full()
            print(text, flush=True)

    def _rotate_if_full(self) -> None:
        if not self.path:
            return
        try:
            if os.fstat(sys.stdout.fileno()).st_size < self.max_bytes:
                return
            sys.stderr.flush()
            os.replace(self.path, self.path + ".1")
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, sys.stdout.fileno())
            os.dup2(fd, sys.stderr.fileno())
            os.close(fd)
        except (OSError, ValueError, io.UnsupportedOperation):
            pass  # logging never fails a request
