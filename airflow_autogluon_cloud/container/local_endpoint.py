"""A real-time endpoint on this machine, serving a model's own ``code/serve.py``.

Plays the part of the SageMaker inference container's model server: loads the model once with
``model_fn``, then answers ``GET /ping`` and ``POST /invocations`` with ``transform_fn``. It also
answers the runtime API path ``POST /endpoints/<name>/invocations``, so boto3's
``sagemaker-runtime`` client pointed at it with ``endpoint_url`` works unchanged.

It has no authentication: it listens on loopback for this machine's processes. Its limits (body
size, timeouts, connections, log size) are in ``endpoint_limits.py``; the model's loading and
micro-batching in ``endpoint_model.py``. Standalone: imports nothing from the Airflow provider.

    python local_endpoint.py --model-dir DIR --name NAME --ready-file PATH [--host 127.0.0.1] [--port 0]
        [--max-concurrency N --idle-seconds S --idle-file PATH]   (a serverless endpoint)
        [--log-file PATH]   (the file its output goes to, rotated past AG_ENDPOINT_LOG_MAX_BYTES)
"""

from __future__ import annotations

import argparse
import io
import json
import os
import select
import signal
import socket
import sys
import threading
import time
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

if __package__:  # imported as part of the package (the batch worker, tests)
    from . import endpoint_capture
    from . import endpoint_limits as limits
    from .endpoint_model import (
        MicroBatcher,
        RequestContext,
        batcher_for,
        import_predictor_package,
        load_handler,
        wants_context,
    )
    from .endpoint_process import stop_when_idle, supervise, write_ready_file
else:  # run as a script (how endpoints start): its directory is on sys.path
    import endpoint_capture  # type: ignore[no-redef]
    import endpoint_limits as limits  # type: ignore[no-redef]
    from endpoint_model import (  # type: ignore[no-redef]
        MicroBatcher,
        RequestContext,
        batcher_for,
        import_predictor_package,
        load_handler,
        wants_context,
    )
    from endpoint_process import stop_when_idle, supervise, write_ready_file  # type: ignore[no-redef]

__all__ = ["EndpointServer", "MicroBatcher", "import_predictor_package", "load_handler", "main"]

#: SageMaker's CustomAttributes header: passed to the serving script in the request context.
CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"
#: SageMaker's real-time payload limit.
MAX_BODY_BYTES = 6 * 1024 * 1024
#: ``GET <path>?since=<epoch seconds>``: the requests answered since then (the local idle sweep's counter).
INVOCATIONS_PATH = "/_agc/invocations"
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024
#: Answers up to this size go out with their headers in one write.
SINGLE_WRITE_BYTES = 256 * 1024
#: The longest request line read (as http.server): longer is answered 414.
MAX_REQUEST_LINE = 65536
POLL_MICROSECONDS_ENV = limits.POLL_MICROSECONDS_ENV
poll_seconds_from_env = limits.poll_seconds_from_env
_PHRASES = {status.value: status.phrase for status in HTTPStatus}


class EndpointServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        name: str,
        module: Any,
        model: Any,
        max_body: int,
        max_concurrency: int | None = None,
        log_file: str | None = None,
    ) -> None:
        self.limits = limits.Limits()  # refused before the port is taken
        super().__init__(address, Handler)
        # Room for every connection the cap allows, the model's files and the listening socket.
        open_files = limits.raise_open_files_limit(self.limits.max_connections + 256)
        self.connections = limits.ConnectionTracker(min(self.limits.max_connections, max(16, open_files - 128)))
        self.log = limits.RotatingLog(log_file, self.limits.log_max_bytes)
        self.max_concurrency = max_concurrency
        self.in_flight = 0
        self.last_activity = time.monotonic()
        self.invocations: dict[int, int] = {}  # requests per minute (epoch // 60), for the idle sweep
        self._admission = threading.Lock()
        self.endpoint_name = name
        self.module = module
        self.model = model
        self.capture: Any = None  # endpoint_capture.Capture when data capture is on
        self.max_body = max_body
        self.default_accept = os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "application/json")
        self.batcher = batcher_for(module, model) if os.environ.get("AG_ENDPOINT_MICRO_BATCHING", "1") != "0" else None
        self.wants_context = wants_context(module)
        self.poll_seconds = self.limits.poll_seconds
        self._polling = False

    def process_request(self, request: Any, client_address: Any) -> None:
        """Start a thread for a new connection, within the connection cap (else a 503)."""
        if not self.connections.admit(request):
            open_now = len(self.connections)
            self.log.line(f"connection from {client_address[0]} -> 503: {open_now} connections open, all in requests")
            limits.refuse_connection(request, open_now)
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.connections.forget(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # What escaped a handler (a client that went away mid-answer): one line, not a traceback per client.
        err = sys.exc_info()[1]
        self.log.line(f"connection from {client_address[0]} ended: {type(err).__name__}: {limits.clip(err)}")

    def poll_briefly(self, sock: socket.socket) -> None:
        """Poll ``sock`` for up to :attr:`poll_seconds` while nothing else is going on.

        A client sending requests back to back on a kept-alive connection is back within a
        fraction of a millisecond. Blocking in ``recv`` meanwhile lets the core go idle, and the
        next request then runs on a cold core: about a millisecond more on a 1-row request, a
        third of its cost. Only one thread polls, and only while no request is in flight, so
        polling never takes the interpreter from a request being scored. ``poll``, not ``select``:
        descriptors past 1024 are fine.
        """
        if self.poll_seconds <= 0:
            return
        with self._admission:
            if self.in_flight or self._polling:
                return
            self._polling = True
        try:
            poller = select.poll()
            poller.register(sock.fileno(), select.POLLIN)
            deadline = time.perf_counter() + self.poll_seconds
            while not self.in_flight and time.perf_counter() < deadline:
                if poller.poll(0):
                    return
        finally:
            self._polling = False

    def admit(self) -> bool:
        """Count a request in flight, unless that would exceed ``max_concurrency``."""
        with self._admission:
            if self.max_concurrency is not None and self.in_flight >= self.max_concurrency:
                return False
            self.in_flight += 1
            self.last_activity = time.monotonic()
            return True

    def touch(self) -> None:
        """A request arrived: the server is not idle, though it holds no slot yet."""
        minute = int(time.time() // 60)
        with self._admission:
            self.last_activity = time.monotonic()
            self.invocations[minute] = self.invocations.get(minute, 0) + 1

    def leave(self) -> None:
        with self._admission:
            self.in_flight -= 1
            self.last_activity = time.monotonic()

    def idle_for(self) -> float:
        """Seconds without a request in flight (0 while one is)."""
        with self._admission:
            return 0.0 if self.in_flight else time.monotonic() - self.last_activity


class RequestError(Exception):
    """A request answered with ``status`` before it reached the model; the connection is closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections
    # Headers and body go out in separate writes; with Nagle's algorithm on, the body would wait
    # for the client's delayed ACK (about 40 ms per request on a kept-alive connection).
    disable_nagle_algorithm = True
    default_request_version = "HTTP/1.1"  # a bad request line is answered with a status line too
    server: EndpointServer

    def setup(self) -> None:
        super().setup()
        # Reads give up at the request's deadline, however slowly the bytes come.
        self.reader = limits.DeadlineSocketReader(self.connection)
        self.rfile = io.BufferedReader(self.reader)
        self.responded = False
        self.body_length: int | None = None

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request would dominate the cost of small requests

    def handle_one_request(self) -> None:
        """One request, read within the limits; every failure is answered (4xx/5xx) or closes cleanly.

        Waiting for the request line (a new or kept-alive connection) is bounded by the idle
        timeout, and such a connection may be closed to make room for a new one; from the request
        line on, the headers and body must arrive within the request timeout.
        """
        server, sock = self.server, self.connection
        self.close_connection = True
        self.responded = False
        self.command = self.path = ""
        try:
            sock.settimeout(server.limits.idle_timeout)
            self.reader.deadline = time.monotonic() + server.limits.idle_timeout
            server.poll_briefly(sock)
            self.raw_requestline = self.rfile.readline(MAX_REQUEST_LINE + 1)
        except OSError:  # timed out, reset, or closed to make room
            return
        if not self.raw_requestline or not server.connections.busy(sock):
            return
        try:
            sock.settimeout(server.limits.request_timeout)
            self.reader.deadline = time.monotonic() + server.limits.request_timeout
            self._one_request()
        except RequestError as err:
            self.close_connection = True
            self._fail(err.status, err.message)
        except TimeoutError:
            self.close_connection = True
            self._fail(408, f"the request did not arrive within {server.limits.request_timeout:g}s")
        except OSError:  # the client went away (or reset the connection)
            self.close_connection = True
        except Exception as err:  # never a dropped connection: a short answer, the traceback in the log
            self.close_connection = True
            server.log.line(traceback.format_exc(limit=-8))
            self._fail(500, f"the endpoint failed on this request: {type(err).__name__}: {limits.clip(err)}")
        finally:
            server.connections.idle(sock)

    def _fail(self, status: int, message: str) -> None:
        if self.responded:
            return
        try:
            self._error(status, message, str(getattr(self, "path", "")).startswith("/endpoints/"))
        except OSError:
            pass

    def _one_request(self) -> None:
        if len(self.raw_requestline) > MAX_REQUEST_LINE:
            self.requestline = self.request_version = self.command = ""
            raise RequestError(414, "the request line is too long")
        if not self.parse_request():  # it answered (400, 431, 505) and closes the connection
            self.responded = True
            return
        encodings = self.headers.get_all("Transfer-Encoding")
        try:
            self.body_length = limits.content_length(self.headers.get_all("Content-Length"))
        except ValueError as err:
            raise RequestError(400, str(err)) from None
        if encodings and self.body_length is not None:
            # RFC 9112 6.3: a proxy and this server could see different messages; refuse and close.
            raise RequestError(400, "Content-Length and Transfer-Encoding together; send Content-Length only")
        method = getattr(self, "do_" + self.command, None)
        if method is None:
            raise RequestError(501, f"unsupported method {limits.clip(self.command, 40)!r}")
        method()
        self.wfile.flush()

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        # The status line, headers and a small body leave in one write: each write wakes the client,
        # and on a busy machine a second wake-up per request costs more than building the answer.
        head = [
            f"{self.protocol_version} {status} {_PHRASES.get(status, '')}",
            f"Server: {self.version_string()}",
            f"Date: {self.date_time_string()}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
            f"X-Local-Endpoint-Pid: {os.getpid()}",  # which server process answered
        ]
        head += [f"{key}: {value}" for key, value in (headers or {}).items()]
        if self.close_connection:
            head.append("Connection: close")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1", "strict")
        self.responded = True
        if len(body) <= SINGLE_WRITE_BYTES:
            self.wfile.write(data + body)
        else:
            self.wfile.write(data)
            self.wfile.write(body)

    def _error(self, status: int, message: str, runtime_api: bool) -> None:
        # Errors (unlike answers) are logged: the caller's exception quotes the end of this log.
        # What the client sent (path, message quoting it) is cut short there.
        message = limits.clip(message, 1000)
        self.server.log.line(
            f"{limits.clip(self.command, 20)} {limits.clip(self.path)} -> {status}: {limits.clip(message)}"
        )
        if runtime_api and 400 <= status < 600 and status not in (404, 408, 411, 413):
            # The SageMaker runtime reports a container's error as ModelError (HTTP 424).
            body = {
                "ErrorCode": "ModelError",
                "message": f'Received client error ({status}) from primary with message "{message}"',
                "OriginalStatusCode": status,
                "OriginalMessage": message,
                "LogStreamArn": "",
            }
            self._send(424, json.dumps(body).encode(), "application/json", {"x-amzn-ErrorType": "ModelError"})
            return
        headers = {"x-amzn-ErrorType": "ValidationError"} if runtime_api else None
        self._send(status, json.dumps({"message": message}).encode(), "application/json", headers)

    def _answer(self, body: bytes, content_type: str, accept: str) -> Any:
        server = self.server
        attributes = self.headers.get(CUSTOM_ATTRIBUTES_HEADER)
        if server.wants_context and (attributes or server.batcher is None):
            # A request with its own options is scored on its own: the micro-batcher's requests share options.
            context = RequestContext(self.headers)
            return server.module.transform_fn(server.model, body, content_type, accept, context)
        if server.batcher is None:
            return server.module.transform_fn(server.model, body, content_type, accept)
        frame, kind = server.module.prepare(server.model, body, content_type, accept)
        return server.module.encode(server.batcher.submit(frame), kind), kind

    def do_GET(self) -> None:
        self._discard_body()
        if self.path == "/ping":
            self._send(200, b"", "text/plain")
        elif self.path.startswith(INVOCATIONS_PATH + "?since=") and self.path[len(INVOCATIONS_PATH) + 7 :].isdigit():
            since = int(self.path[len(INVOCATIONS_PATH) + 7 :]) // 60  # whole minutes: errs on keeping
            count = sum(n for minute, n in list(self.server.invocations.items()) if minute >= since)
            self._send(200, json.dumps({"invocations": count}).encode(), "application/json")
        else:
            self._send(404, b'{"message": "not found"}', "application/json")

    def _discard_body(self) -> None:
        """Read and drop an unanswered request's body, so the kept-alive connection stays in step.

        Unread, the body would be taken for the next request line. A body that is missing its
        length or is beyond the drain limit closes the connection instead.
        """
        remaining = self.body_length or 0
        if self.headers.get("Transfer-Encoding") or remaining > DRAIN_LIMIT_BYTES:
            self.close_connection = True
            return
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1024 * 1024))
            if not chunk:
                self.close_connection = True
                break
            remaining -= len(chunk)

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        runtime_api = path.startswith("/endpoints/")
        if runtime_api:
            parts = path.strip("/").split("/")
            if len(parts) != 3 or parts[2] != "invocations" or parts[1] != self.server.endpoint_name:
                self._discard_body()
                self._error(404, f"Endpoint {parts[1] if len(parts) > 1 else ''!r} not found here.", True)
                return
        elif path != "/invocations":
            self._discard_body()
            self._send(404, b'{"message": "not found"}', "application/json")
            return
        length = self.body_length
        if length is None:
            self.close_connection = True  # where its body ends is unknown
            self._error(411, "a Content-Length header is required", runtime_api)
            return
        if length > self.server.max_body:
            # Read and discard the body (in chunks, never held in memory) so the client sees the 413
            # instead of a broken pipe; a body beyond the drain limit just gets the connection closed.
            self._discard_body()
            self.close_connection = True
            self._error(
                413,
                f"the request body is {length} bytes; the limit is {self.server.max_body} bytes (6 MB). "
                "Send fewer rows per request, or use batch prediction.",
                runtime_api,
            )
            return
        # The whole body first: a serverless slot is held only while a request is scored, never
        # while its body trickles in (its arrival still counts as activity for the idle stop).
        self.server.touch()
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            raise ConnectionError("the client closed the connection before sending its whole body")
        server = self.server
        if not server.admit():
            # Over a serverless endpoint's max_concurrency: SageMaker's runtime throttles the request.
            message = f"the endpoint is serving its maximum of {server.max_concurrency} concurrent requests; retry"
            server.log.line(f"{self.command} {limits.clip(self.path)} -> 429: {message}")
            body = json.dumps({"message": message}).encode()
            self._send(429, body, "application/json", {"x-amzn-ErrorType": "ThrottlingException"})
            return
        try:
            self._invoke(body, runtime_api)
        finally:
            server.leave()

    def _invoke(self, body: bytes, runtime_api: bool) -> None:
        content_type = self.headers.get("Content-Type") or "text/csv"
        accept = self.headers.get("Accept") or ""
        if accept in ("", "*/*"):
            accept = self.server.default_accept
        try:
            result = self._answer(body, content_type, accept)
        except RecursionError:
            # Only what a client sent nests this deep (JSON in the body or the CustomAttributes header).
            self._error(400, "the request nests too deeply (JSON arrays or objects inside each other)", runtime_api)
            return
        except Exception as err:
            status = getattr(err, "status_code", None)
            if not isinstance(status, int) or not 400 <= status < 500:
                status = 500
                self.server.log.line(traceback.format_exc(limit=-8))  # a server-side failure: into endpoint.log
            message = getattr(err, "message", None) or str(err) or type(err).__name__
            self._error(status, str(message), runtime_api)
            return
        out, out_type = result if isinstance(result, tuple) else (result, accept)
        data = out.encode() if isinstance(out, str) else bytes(out)
        if self.server.capture is not None:
            self.server.capture.record(body, content_type, data, out_type)
        self._send(200, data, out_type)


class SharedPortEndpointServer(EndpointServer):
    """One of several worker processes on one port: the kernel spreads connections across them."""

    allow_reuse_port = True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--program", default=os.environ.get("SAGEMAKER_PROGRAM", "serve.py"))
    parser.add_argument("--max-body-bytes", type=int, default=MAX_BODY_BYTES)
    parser.add_argument("--max-concurrency", type=int, default=None, help="serverless: requests in flight")
    parser.add_argument("--idle-seconds", type=float, default=None, help="serverless: stop after this idle time")
    parser.add_argument("--idle-file", default=None, help="written when the server stops for being idle")
    parser.add_argument("--workers", type=int, default=1, help="server processes behind the one port")
    parser.add_argument("--reuse-port", action="store_true", help="(a worker) share the port with SO_REUSEPORT")
    parser.add_argument("--log-file", default=None, help="where its output goes: rotated when it is full")
    args = parser.parse_args(argv)
    if args.workers > 1:
        return supervise(args, str(Path(__file__).resolve()))

    print(f"Loading model from {args.model_dir} for endpoint {args.name}", flush=True)
    module, model = load_handler(args.model_dir, args.program)
    server_class = SharedPortEndpointServer if args.reuse_port else EndpointServer
    try:
        server = server_class(
            (args.host, args.port), args.name, module, model, args.max_body_bytes, args.max_concurrency, args.log_file
        )
    except OSError as err:
        if not args.port or args.reuse_port:
            raise
        # A restart after an idle stop asks for its old port; if something took it, take any.
        print(f"Port {args.port} is not free ({err}); serving on another port", flush=True)
        server = EndpointServer(
            (args.host, 0), args.name, module, model, args.max_body_bytes, args.max_concurrency, args.log_file
        )
    port, server.capture = server.server_address[1], endpoint_capture.from_workdir(args.model_dir, args.name)
    if args.idle_seconds:
        threading.Thread(
            target=stop_when_idle, args=(server, args.idle_seconds, args.idle_file), name="idle-stop", daemon=True
        ).start()

    def shutdown(signum: int, frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    write_ready_file(args.ready_file, port, args.host)
    print(f"Endpoint {args.name} serving on http://{args.host}:{port}", flush=True)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    print(f"Endpoint {args.name} stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
