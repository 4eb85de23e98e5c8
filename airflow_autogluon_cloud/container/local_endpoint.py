"""A real-time endpoint on this machine, serving a model's own ``code/serve.py``.

Plays the part of the SageMaker inference container's model server: loads the model once with
``model_fn``, then answers ``GET /ping`` and ``POST /invocations`` with ``transform_fn``. It also
answers the runtime API path ``POST /endpoints/<name>/invocations``, so boto3's
``sagemaker-runtime`` client pointed at it with ``endpoint_url`` works unchanged.

Standalone: imports nothing from the Airflow provider.

    python local_endpoint.py --model-dir DIR --name NAME --ready-file PATH [--host 127.0.0.1] [--port 0]
        [--max-concurrency N --idle-seconds S --idle-file PATH]   (a serverless endpoint)
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.util
import inspect
import json
import math
import os
import queue
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from concurrent.futures import Future
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

#: SageMaker's CustomAttributes header: passed to the serving script in the request context.
CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"
#: Thread-count variables of the math libraries a model may use.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: SageMaker's real-time payload limit.
MAX_BODY_BYTES = 6 * 1024 * 1024
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024
#: Answers up to this size go out with their headers in one write.
SINGLE_WRITE_BYTES = 256 * 1024
#: How long an idle server polls a kept-alive connection for its next request before it sleeps
#: (``AG_ENDPOINT_POLL_MICROSECONDS``; 0 turns polling off). See :meth:`EndpointServer.poll_briefly`.
POLL_MICROSECONDS_ENV = "AG_ENDPOINT_POLL_MICROSECONDS"
DEFAULT_POLL_MICROSECONDS = 1000
_PHRASES = {status.value: status.phrase for status in HTTPStatus}


def poll_seconds_from_env() -> float:
    """``AG_ENDPOINT_POLL_MICROSECONDS`` in seconds; a value that is not a number of 0 or more is refused."""
    raw = os.environ.get(POLL_MICROSECONDS_ENV, "").strip()
    if not raw:
        return DEFAULT_POLL_MICROSECONDS / 1e6
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(
            f"{POLL_MICROSECONDS_ENV}={raw!r}: expected a number of microseconds, 0 or more "
            f"(default {DEFAULT_POLL_MICROSECONDS}; 0 turns polling off)"
        )
    return value / 1e6


def _predictor_package(predictor_type: Any) -> str | None:
    """The kind's AutoGluon package, from the predictor-kinds table beside this script (ag_kinds.py).

    Loaded under a private name: the model's own ``code/`` copy stays the one serve.py imports.
    """
    spec = importlib.util.spec_from_file_location("_ag_kinds_table", Path(__file__).resolve().parent / "ag_kinds.py")
    if spec is None or spec.loader is None:
        return None
    table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(table)
    return table.package_of(predictor_type)


def import_predictor_package(model_dir: str, summary_text: str | None = None) -> None:
    """Import the model's AutoGluon package (named in its ``training_summary.json``) ahead of
    ``model_fn``, which would import it anyway.

    :param summary_text: that file's text, when already read (else it is read from ``model_dir``).
    """
    try:
        if summary_text is None:
            summary_text = (Path(model_dir) / "training_summary.json").read_text(encoding="utf-8")
        summary = json.loads(summary_text)
    except (OSError, ValueError):
        summary = {}
    if not isinstance(summary, dict):
        summary = {}
    package = _predictor_package(summary.get("predictor_type"))
    if package:
        try:
            importlib.import_module(package)
        except ImportError:
            pass  # model_fn reports what is missing


def load_handler(model_dir: str, program: str) -> tuple[Any, Any]:
    """The serving script and its ``model_fn(model_dir)``, in a process that serves nothing else.

    What is imported, then the model, lives as long as the process, so each is moved out of the
    garbage collector's sight (``gc.freeze``): AutoGluon's ``persist()`` runs a full collection per
    model it sizes (~0.1 s each with AutoGluon imported, most of a small model's load time), and
    neither those nor any later collection walks them again; forked workers leave those pages shared.
    """
    code_dir = Path(model_dir) / "code"
    sys.path.insert(0, str(code_dir))
    spec = importlib.util.spec_from_file_location("serve", code_dir / program)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"No serving script {program} in {code_dir}")
    import_predictor_package(model_dir)
    gc.freeze()
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.model_fn(model_dir)
    gc.collect()  # what loading left behind (only what is not frozen is walked: milliseconds)
    gc.freeze()
    return module, model


class MicroBatcher:
    """Coalesces concurrent requests into one model call.

    A request that finds the model idle and nobody waiting is scored at once on its own thread
    (no hand-over cost). Otherwise it queues; one thread takes everything queued (never waiting
    for more), scores it with the serving script's ``predict_many`` and hands each request its
    own answer. The model is called by one thread at a time either way.
    """

    def __init__(self, module: Any, model: Any, max_rows: int = 20_000) -> None:
        self.module = module
        self.model = model
        self.max_rows = max_rows
        self._model_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._waiting = 0  # queued requests not yet answered; while any wait, nobody jumps the queue
        self._queue: queue.SimpleQueue[tuple[Any, Future[Any]]] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="micro-batcher", daemon=True).start()

    def submit(self, frame: Any) -> Any:
        """Score ``frame`` (with whatever else is waiting); return its answer or raise its error."""
        with self._state_lock:
            inline = self._waiting == 0 and self._model_lock.acquire(blocking=False)
            if not inline:
                self._waiting += 1
        if inline:
            try:
                answer = self.module.predict_many(self.model, [frame])[0]
            finally:
                self._model_lock.release()
        else:
            future: Future[Any] = Future()
            self._queue.put((frame, future))
            answer = future.result()
        if isinstance(answer, Exception):
            raise answer
        return answer

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            with self._model_lock:
                rows = len(batch[0][0])
                while rows < self.max_rows:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    batch.append(item)
                    rows += len(item[0])
                try:
                    answers = self.module.predict_many(self.model, [frame for frame, _ in batch])
                except Exception as err:  # never leave a request waiting
                    answers = [err] * len(batch)
            with self._state_lock:
                self._waiting -= len(batch)
            for (_, future), answer in zip(batch, answers, strict=True):
                future.set_result(answer)


def _batcher_for(module: Any, model: Any) -> MicroBatcher | None:
    # Only serving scripts that split a request into prepare/predict_many/encode can be batched;
    # any other script is called through transform_fn, one request at a time.
    if all(callable(getattr(module, name, None)) for name in ("prepare", "predict_many", "encode")):
        return MicroBatcher(module, model)
    return None


class RequestContext:
    """The part of the model server's request context a serving script reads: request headers."""

    def __init__(self, headers: Any) -> None:
        self.headers = headers

    def get_request_header(self, idx: int, key: str) -> str | None:
        return self.headers.get(key)


def _wants_context(module: Any) -> bool:
    """Whether ``transform_fn`` takes the request context (a fifth argument), as the toolkit checks."""
    try:
        return len(inspect.signature(module.transform_fn).parameters) >= 5
    except (TypeError, ValueError):
        return False


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
    ) -> None:
        poll_seconds = poll_seconds_from_env()  # refused before the port is taken
        super().__init__(address, Handler)
        self.max_concurrency = max_concurrency
        self.in_flight = 0
        self.last_activity = time.monotonic()
        self._admission = threading.Lock()
        self.endpoint_name = name
        self.module = module
        self.model = model
        self.max_body = max_body
        self.default_accept = os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "application/json")
        self.batcher = _batcher_for(module, model) if os.environ.get("AG_ENDPOINT_MICRO_BATCHING", "1") != "0" else None
        self.wants_context = _wants_context(module)
        self.poll_seconds = poll_seconds
        self._polling = False

    def poll_briefly(self, sock: socket.socket) -> None:
        """Poll ``sock`` for up to :attr:`poll_seconds` while nothing else is going on.

        A client sending requests back to back on a kept-alive connection is back within a
        fraction of a millisecond. Blocking in ``recv`` meanwhile lets the core go idle, and the
        next request then runs on a cold core: about a millisecond more on a 1-row request, a
        third of its cost. Only one thread polls, and only while no request is in flight, so
        polling never takes the interpreter from a request being scored.
        """
        if self.poll_seconds <= 0:
            return
        with self._admission:
            if self.in_flight or self._polling:
                return
            self._polling = True
        try:
            deadline = time.perf_counter() + self.poll_seconds
            while not self.in_flight and time.perf_counter() < deadline:
                if select.select([sock], [], [], 0)[0]:
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

    def leave(self) -> None:
        with self._admission:
            self.in_flight -= 1
            self.last_activity = time.monotonic()

    def idle_for(self) -> float:
        """Seconds without a request in flight (0 while one is)."""
        with self._admission:
            return 0.0 if self.in_flight else time.monotonic() - self.last_activity


def stop_when_idle(server: EndpointServer, idle_seconds: float, idle_file: str | None) -> None:
    """Stop the server after ``idle_seconds`` without requests (a serverless endpoint scaled to zero).

    The idle file says the stop was deliberate, so the endpoint stays in service and the next
    call through the provider starts it again.
    """
    while True:
        time.sleep(min(0.5, idle_seconds / 4))
        if server.idle_for() >= idle_seconds:
            break
    if idle_file:
        target = Path(idle_file)
        tmp = target.with_name(target.name + ".partial")
        tmp.write_text(json.dumps({"pid": os.getpid(), "stopped_at": time.time(), "idle_seconds": idle_seconds}))
        os.replace(tmp, target)
    print(
        f"Endpoint {server.endpoint_name}: no request for {idle_seconds:.0f}s; stopping until the next call", flush=True
    )
    server.shutdown()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections
    # Headers and body go out in separate writes; with Nagle's algorithm on, the body would wait
    # for the client's delayed ACK (about 40 ms per request on a kept-alive connection).
    disable_nagle_algorithm = True
    server: EndpointServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request would dominate the cost of small requests

    def handle_one_request(self) -> None:
        self.server.poll_briefly(self.connection)
        super().handle_one_request()

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
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1", "strict")
        if len(body) <= SINGLE_WRITE_BYTES:
            self.wfile.write(data + body)
        else:
            self.wfile.write(data)
            self.wfile.write(body)

    def _error(self, status: int, message: str, runtime_api: bool) -> None:
        # Errors (unlike answers) are logged: the caller's exception quotes the end of this log.
        print(f"{self.command} {self.path} -> {status}: {message}", flush=True)
        if runtime_api and 400 <= status < 600 and status not in (404, 411, 413):
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
        if self.path == "/ping":
            self._send(200, b"", "text/plain")
        else:
            self._send(404, b'{"message": "not found"}', "application/json")

    def _discard_body(self) -> None:
        """Read and drop an unanswered request's body, so the kept-alive connection stays in step.

        Unread, the body would be taken for the next request line. A body that is missing its
        length or is beyond the drain limit closes the connection instead.
        """
        try:
            remaining = int(self.headers.get("Content-Length", ""))
        except ValueError:
            remaining = -1
        if not 0 <= remaining <= DRAIN_LIMIT_BYTES:
            self.close_connection = True
            return
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1024 * 1024))
            if not chunk:
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
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            self.close_connection = True  # where its body ends is unknown
            self._error(411, "a Content-Length header is required", runtime_api)
            return
        length = int(length_header)
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
        server = self.server
        if not server.admit():
            # Over a serverless endpoint's max_concurrency: SageMaker's runtime throttles the request.
            if length:
                self.rfile.read(length)
            message = f"the endpoint is serving its maximum of {server.max_concurrency} concurrent requests; retry"
            print(f"{self.command} {self.path} -> 429: {message}", flush=True)
            body = json.dumps({"message": message}).encode()
            self._send(429, body, "application/json", {"x-amzn-ErrorType": "ThrottlingException"})
            return
        try:
            self._invoke(length, runtime_api)
        finally:
            server.leave()

    def _invoke(self, length: int, runtime_api: bool) -> None:
        body = self.rfile.read(length) if length else b""
        content_type = self.headers.get("Content-Type") or "text/csv"
        accept = self.headers.get("Accept") or ""
        if accept in ("", "*/*"):
            accept = self.server.default_accept
        try:
            result = self._answer(body, content_type, accept)
        except Exception as err:
            status = getattr(err, "status_code", None)
            if not isinstance(status, int) or not 400 <= status < 500:
                status = 500
                traceback.print_exc()  # a server-side failure: its traceback goes to endpoint.log
            message = getattr(err, "message", None) or str(err) or type(err).__name__
            self._error(status, str(message), runtime_api)
            return
        out, out_type = result if isinstance(result, tuple) else (result, accept)
        data = out.encode() if isinstance(out, str) else bytes(out)
        self._send(200, data, out_type)


class SharedPortEndpointServer(EndpointServer):
    """One of several worker processes on one port: the kernel spreads connections across them."""

    allow_reuse_port = True


def supervise(args: argparse.Namespace) -> int:
    """Run ``args.workers`` server processes behind one port (SO_REUSEPORT) and watch them.

    The supervisor holds the port (bound, not listening, so it gets no connections), starts the
    workers on it, and is ready once every worker is. It is the endpoint's recorded process: if
    a worker dies it stops the others and exits, so the endpoint is reported failed; SIGTERM
    stops them all.
    """
    reserve = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    reserve.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    reserve.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    reserve.bind((args.host, args.port))
    port = reserve.getsockname()[1]
    common = [sys.executable, str(Path(__file__).resolve()), "--model-dir", args.model_dir, "--name", args.name]
    common += ["--host", args.host, "--port", str(port), "--reuse-port", "--program", args.program]
    common += ["--max-body-bytes", str(args.max_body_bytes)]
    ready_files = [f"{args.ready_file}.worker{i}" for i in range(args.workers)]
    # Each worker gets its share of the cores: N processes each running as many math threads as
    # there are cores would fight over them (OpenMP in LightGBM and friends).
    threads = str(max(1, (os.cpu_count() or 1) // args.workers))
    env = {**os.environ, **{var: os.environ.get(var, threads) for var in THREAD_VARIABLES}}
    workers = [subprocess.Popen([*common, "--ready-file", ready], env=env) for ready in ready_files]
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    print(f"Endpoint {args.name}: starting {args.workers} server processes on port {port}", flush=True)
    ready = False
    code = 0
    while not stopping.is_set():
        exited = [w for w in workers if w.poll() is not None]
        if exited:
            print(f"Endpoint {args.name}: worker pid {exited[0].pid} exited ({exited[0].returncode})", flush=True)
            code = 1
            break
        if not ready and all(Path(f).exists() for f in ready_files):
            ready = True
            write_ready_file(args.ready_file, port, args.host)
            pids = ", ".join(str(w.pid) for w in workers)
            print(f"Endpoint {args.name} serving on http://{args.host}:{port} (pids {pids})", flush=True)
        stopping.wait(0.2)
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
    for worker in workers:
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
    reserve.close()
    print(f"Endpoint {args.name} stopped", flush=True)
    return code


def write_ready_file(path: str, port: int, host: str) -> None:
    target = Path(path)
    tmp = target.with_name(target.name + ".partial")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"port": port, "pid": os.getpid(), "host": host}, fh)
    os.replace(tmp, target)


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
    args = parser.parse_args(argv)
    if args.workers > 1:
        return supervise(args)

    print(f"Loading model from {args.model_dir} for endpoint {args.name}", flush=True)
    module, model = load_handler(args.model_dir, args.program)
    server_class = SharedPortEndpointServer if args.reuse_port else EndpointServer
    try:
        server = server_class(
            (args.host, args.port), args.name, module, model, args.max_body_bytes, args.max_concurrency
        )
    except OSError as err:
        if not args.port or args.reuse_port:
            raise
        # A restart after an idle stop asks for its old port; if something took it, take any.
        print(f"Port {args.port} is not free ({err}); serving on another port", flush=True)
        server = EndpointServer((args.host, 0), args.name, module, model, args.max_body_bytes, args.max_concurrency)
    port = server.server_address[1]
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
