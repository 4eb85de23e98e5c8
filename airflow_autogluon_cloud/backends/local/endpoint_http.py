"""How the provider talks to a local endpoint's server: readiness, pooled requests, throttling retries.

Module-level helpers of :mod:`.endpoints`, kept apart so the endpoint lifecycle stays readable.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

SERVER_SCRIPT = Path(__file__).resolve().parents[2] / "container" / "local_endpoint.py"
_pool_local = threading.local()
#: Written by a serverless server that stopped itself for being idle.
IDLE_FILE = "idle.json"
#: Attempts for a throttled (429) request, with backoff from 0.1 s (1.5 s in all).
THROTTLE_RETRIES = 5


def ping(url: str, timeout: float = 2.0) -> bool:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", "/ping")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def ready_server(pending: dict[str, Any]) -> tuple[str, int] | None:
    """The URL and PID of a pending server once it answers ``/ping``."""
    ready = Path(pending["ready_file"])
    if not ready.exists():
        return None
    info = json.loads(ready.read_text())
    url = f"http://{info['host']}:{info['port']}"
    return (url, int(info["pid"])) if ping(url) else None


def server_argv(
    name: str,
    workdir: str,
    ready_file: str,
    host: str,
    port: int,
    serverless: dict[str, Any],
    workers: int = 1,
    log_file: str | None = None,
    interpreter: str | None = None,
) -> list[str]:
    """The command of one endpoint server: ``workers`` processes behind one port; a serverless
    server (always one process) bounds concurrency and stops when idle. Its log (``log_file``)
    is rotated when full."""
    argv = [
        interpreter or sys.executable,
        str(SERVER_SCRIPT),
        "--model-dir",
        str(Path(workdir) / "model"),
        "--name",
        name,
    ]
    argv += ["--ready-file", ready_file, "--host", host, "--port", str(port)]
    if log_file:
        argv += ["--log-file", log_file]
    if workers > 1:
        argv += ["--workers", str(workers)]
    if serverless:
        argv += ["--max-concurrency", str(serverless["max_concurrency"])]
        argv += ["--idle-seconds", str(serverless["idle_seconds"])]
        argv += ["--idle-file", str(Path(workdir) / IDLE_FILE)]
    return argv


def read_tail(path: Path, lines: int, line_chars: int = 500, window: int = 64 * 1024) -> str:
    """The last ``lines`` lines of a log, read from its end (never the whole file), each cut to ``line_chars``."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - window))
            text = fh.read(window).decode("utf-8", errors="replace")
    except OSError:
        return ""
    tail = text.splitlines()[-lines:]
    return "\n".join(line if len(line) <= line_chars else line[:line_chars] + "...[cut]" for line in tail)


def server_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}


def connection(url: str) -> http.client.HTTPConnection:
    pool = getattr(_pool_local, "pool", None)
    if pool is None:
        pool = _pool_local.pool = {}
    conn = pool.get(url)
    if conn is None:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        conn = pool[url] = http.client.HTTPConnection(host, int(port), timeout=300)
    return conn


#: SageMaker's CustomAttributes header, as the runtime passes it to the container.
CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"


def post(
    url: str, body: bytes, content_type: str, accept: str, custom_attributes: str | None = None
) -> tuple[int, bytes, str]:
    headers = {"Content-Type": content_type, "Accept": accept, "Content-Length": str(len(body))}
    if custom_attributes:
        headers[CUSTOM_ATTRIBUTES_HEADER] = custom_attributes
    for attempt in (1, 2):
        conn = connection(url)
        try:
            conn.request("POST", "/invocations", body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read(), response.getheader("Content-Type") or accept
        except (http.client.HTTPException, OSError):
            conn.close()
            _pool_local.pool.pop(url, None)
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def post_retrying_throttles(
    url: str, body: bytes, content_type: str, accept: str, custom_attributes: str | None
) -> tuple[int, bytes, str]:
    """Like the SageMaker backend's calls, a throttled request (429) is retried with backoff."""
    for attempt in range(THROTTLE_RETRIES):
        answer = post(url, body, content_type, accept, custom_attributes)
        if answer[0] != 429:
            break
        time.sleep(0.1 * 2**attempt)
    return answer
