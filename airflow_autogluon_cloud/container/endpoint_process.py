"""The local endpoint's processes: several servers behind one port, and the ready file.

Beside ``local_endpoint.py`` (which imports it). Standalone: imports nothing from the Airflow provider.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

#: Thread-count variables of the math libraries a model may use.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def supervise(args: argparse.Namespace, script: str) -> int:
    """Run ``args.workers`` server processes behind one port (SO_REUSEPORT) and watch them.

    The supervisor holds the port (bound, not listening, so it gets no connections), starts the
    workers on it, and is ready once every worker is. It is the endpoint's recorded process: if
    a worker dies it stops the others and exits, so the endpoint is reported failed; SIGTERM
    stops them all.

    :param script: the server script (``local_endpoint.py``) each worker runs.
    """
    reserve = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    reserve.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    reserve.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    reserve.bind((args.host, args.port))
    port = reserve.getsockname()[1]
    common = [sys.executable, script, "--model-dir", args.model_dir, "--name", args.name]
    common += ["--host", args.host, "--port", str(port), "--reuse-port", "--program", args.program]
    common += ["--max-body-bytes", str(args.max_body_bytes)]
    if args.log_file:
        common += ["--log-file", args.log_file]
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


def stop_when_idle(server: Any, idle_seconds: float, idle_file: str | None) -> None:
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
    server.log.line(
        f"Endpoint {server.endpoint_name}: no request for {idle_seconds:.0f}s; stopping until the next call"
    )
    server.shutdown()
