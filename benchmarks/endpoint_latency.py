"""4. Real-time endpoint: latency and throughput of the local endpoint, in-process, and MLflow.

One model (trained on the bundled churn data) is served these ways and sent the same CSV bodies:

- the local backend's endpoint (``AGDeployOperator``'s server: ``POST /invocations``), deployed
  with ``instance_count=1`` (one server process, the default) and ``instance_count=2`` (two server
  processes behind one port, each with half the math-library threads);
- the same model loaded in-process, ``predictor.predict`` on a ready DataFrame (the limit): loaded
  with ``TabularPredictor.load`` and ``persist()``-ed, as the endpoint's ``model_fn`` does, so
  neither side reads models from disk per call;
- MLflow's model server (``mlflow models serve --env-manager local``: uvicorn, one worker, its
  default) with an ``mlflow.pyfunc`` wrapper around the same persisted predictor; and, for
  reference only (no target), the same server with ``--workers 2``.

The local endpoint answers with the prediction and every class probability; the MLflow wrapper
and the in-process call return the prediction only, which is less work. MLflow is already in the
project's environment (the ``sagemaker`` package depends on it), so nothing is installed for it.

Each HTTP client keeps its connection alive. "8 clients" runs 8 threads, each with its own
connection (in-process: its own thread calling ``predict``). The kernel spreads the 8 connections
over a multi-process server's processes by hashing them, so one repeat may split them 5/3.

Stability: every server is started once and stays loaded; then each repeat measures every system
in turn, the order rotated between repeats (so drift on a shared machine hits all of them alike).
Each figure is the median over the repeats with its min-max; each ratio is taken within a repeat
(systems measured minutes apart are never divided) and its median must meet the target.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import BENCH_DIR, WORK, bench_hook, free_port, log, percentile, spread, trained_model

HOST = "127.0.0.1"
OURS = "local endpoint, 1 process (this provider)"
OURS_2 = "local endpoint, 2 processes (instance_count=2)"
IN_PROCESS = "in-process predictor.predict"
MLFLOW = "MLflow model server (1 worker, its default)"
MLFLOW_2 = "MLflow model server, --workers 2 (reference)"
SEQUENTIAL = ("1_row_sequential", "100_row_sequential")
CONCURRENT = ("1_row_8_clients", "100_row_8_clients")
CASES = (*SEQUENTIAL, *CONCURRENT)
#: The cases each system is measured on (multi-process servers only matter with several clients).
SYSTEM_CASES = {OURS: CASES, OURS_2: CONCURRENT, IN_PROCESS: CASES, MLFLOW: CASES, MLFLOW_2: CONCURRENT}
#: (name, numerator, denominator, case, figure, bound, "max" or "min"): the targets, per repeat.
TARGETS = (
    ("1_row_p50_to_in_process", OURS, IN_PROCESS, "1_row_sequential", "p50_ms", 1.3, "max"),
    ("1_row_p50_to_mlflow", OURS, MLFLOW, "1_row_sequential", "p50_ms", 0.8, "max"),
    ("100_row_p50_to_mlflow", OURS, MLFLOW, "100_row_sequential", "p50_ms", 0.8, "max"),
    ("1_row_8_client_rps_to_mlflow", OURS_2, MLFLOW, "1_row_8_clients", "rps", 2.0, "min"),
    ("100_row_8_client_rps_to_mlflow", OURS_2, MLFLOW, "100_row_8_clients", "rps", 2.0, "min"),
)
#: Ratios reported without a target.
REFERENCE_RATIOS = (
    ("1_row_8_client_rps_2_processes_to_1", OURS_2, OURS, "1_row_8_clients", "rps"),
    ("100_row_8_client_rps_2_processes_to_1", OURS_2, OURS, "100_row_8_clients", "rps"),
    ("1_row_8_client_rps_to_mlflow_2_workers", OURS_2, MLFLOW_2, "1_row_8_clients", "rps"),
    ("100_row_8_client_rps_to_mlflow_2_workers", OURS_2, MLFLOW_2, "100_row_8_clients", "rps"),
)


def http_caller(port: int, path: str = "/invocations") -> Callable[[], Callable[[bytes], None]]:
    """A factory of per-thread callers, each holding one keep-alive connection."""

    def make() -> Callable[[bytes], None]:
        conn = http.client.HTTPConnection(HOST, port, timeout=60)

        def call(body: bytes) -> None:
            conn.request("POST", path, body=body, headers={"Content-Type": "text/csv", "Accept": "application/json"})
            response = conn.getresponse()
            payload = response.read()
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}: {payload[:300]!r}")

        return call

    return make


def measure(make_caller: Callable[[], Callable[[Any], None]], body: Any, requests: int, clients: int) -> dict:
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = max(1, requests // clients)
    errors: list[str] = []
    ready = threading.Barrier(clients + 1)

    def worker() -> None:
        call = make_caller()
        try:
            call(body)  # warm the connection and any lazy state; not timed
        except Exception as err:
            errors.append(repr(err))
        ready.wait()
        mine = []
        for _ in range(per_client):
            t0 = time.perf_counter()
            try:
                call(body)
            except Exception as err:
                errors.append(repr(err))
                return
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    ready.wait()  # every client connected and warm: the clock starts together for all of them
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, first: {errors[0]}")
    return {
        "p50_ms": round(percentile(latencies, 50) * 1000, 3),
        "p99_ms": round(percentile(latencies, 99) * 1000, 3),
        "rps": round(len(latencies) / wall, 1),
        "requests": len(latencies),
    }


def _wait_http(port: int, path: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"nothing answered on {HOST}:{port}{path} within {timeout}s")


def save_mlflow_model(predictor_dir: Path) -> Path:
    import mlflow.pyfunc

    sys.path.insert(0, str(BENCH_DIR))
    from mlflow_model import AutoGluonTabularModel

    model_path = WORK / "mlflow-model"
    shutil.rmtree(model_path, ignore_errors=True)
    mlflow.pyfunc.save_model(
        str(model_path),
        python_model=AutoGluonTabularModel(),
        artifacts={"predictor": str(predictor_dir)},
        code_paths=[str(BENCH_DIR / "mlflow_model.py")],
    )
    return model_path


def start_mlflow(model_path: Path, workers: int = 1) -> tuple[subprocess.Popen, int]:
    port = free_port()
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"}
    log_path = WORK / f"mlflow-serve-{workers}.log"
    argv = [f"{bin_dir}/mlflow", "models", "serve", "-m", str(model_path), "--env-manager", "local"]
    argv += ["-h", HOST, "-p", str(port)]
    if workers > 1:
        argv += ["--workers", str(workers)]
    proc = subprocess.Popen(argv, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_http(port, "/ping", 180, proc)
    except Exception as err:
        stop_mlflow(proc)
        raise RuntimeError(f"MLflow server did not start; see {log_path}:\n{log_path.read_text()[-3000:]}") from err
    return proc, port


def stop_mlflow(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, 15)
        proc.wait(30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, 9)


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def summarise(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each figure over the repeats, with its min-max."""
    out: dict[str, Any] = {}
    for key in ("p50_ms", "p99_ms", "rps"):
        med, low, high = spread([s[key] for s in samples])
        out[key] = med
        out[f"{key}_range"] = [low, high]
    out["requests_per_repeat"] = samples[0]["requests"]
    return out


def ratio(samples: dict[str, dict[str, list[dict]]], num: str, den: str, case: str, figure: str) -> dict:
    per_repeat = [a[figure] / b[figure] for a, b in zip(samples[num][case], samples[den][case], strict=True)]
    med, low, high = spread(per_repeat, digits=3)
    return {"median": med, "range": [low, high], "per_repeat": [round(r, 3) for r in per_repeat]}


def run(quick: bool = False) -> dict[str, Any]:
    import pandas as pd

    from airflow_autogluon_cloud.example_data import make_churn

    repeats = 2 if quick else 5
    model = trained_model()
    hook = bench_hook()
    rows_frame = make_churn(100, seed=11, with_label=False)
    bodies = {1: rows_frame.head(1).to_csv(index=False).encode(), 100: rows_frame.to_csv(index=False).encode()}
    frames = {n: pd.read_csv(io.BytesIO(body)) for n, body in bodies.items()}
    requests = {
        "1_row_sequential": 100 if quick else 300,
        "100_row_sequential": 40 if quick else 100,
        "1_row_8_clients": 160 if quick else 640,
        "100_row_8_clients": 80 if quick else 240,
    }

    stamp = int(time.time())
    endpoints: list[str] = []
    mlflow_procs: list[subprocess.Popen] = []
    callers: dict[str, Callable[[], Callable[[Any], None]]] = {}
    try:
        for label, count in ((OURS, 1), (OURS_2, 2)):
            name = f"ag-af-bench-{stamp}-{count}"
            log("endpoint: deploying %s", label)
            plan = hook.start_deploy(endpoint_name=name, model_uri=model["model_artifact_uri"], instance_count=count)
            endpoints.append(name)
            callers[label] = http_caller(_port(hook.finish_deploy(plan)["url"]))

        predictor_dir = WORK / "inprocess-predictor"
        shutil.rmtree(predictor_dir, ignore_errors=True)
        predictor = hook.to_local_predictor(model["model_artifact_uri"], predictor_dir)
        predictor.persist()  # as the endpoint's model_fn and the MLflow wrapper do
        predict = predictor.predict
        callers[IN_PROCESS] = lambda: predict

        mlflow_model = save_mlflow_model(predictor_dir)
        for label, workers in ((MLFLOW, 1), (MLFLOW_2, 2)):
            log("endpoint: starting %s", label)
            proc, port = start_mlflow(mlflow_model, workers)
            mlflow_procs.append(proc)
            callers[label] = http_caller(port)

        def payload(label: str, case: str) -> Any:
            n = 1 if case.startswith("1_row") else 100
            return frames[n] if label == IN_PROCESS else bodies[n]

        log("endpoint: warming every system up (not counted)")
        for label, cases in SYSTEM_CASES.items():
            for case in cases:
                measure(callers[label], payload(label, case), 16, 8 if case in CONCURRENT else 1)

        order = list(SYSTEM_CASES)
        samples: dict[str, dict[str, list[dict]]] = {label: {c: [] for c in SYSTEM_CASES[label]} for label in order}
        for r in range(repeats):
            rotated = order[r % len(order) :] + order[: r % len(order)]
            log("endpoint: repeat %d/%d, order: %s", r + 1, repeats, " / ".join(rotated))
            for label in rotated:
                for case in SYSTEM_CASES[label]:
                    clients = 8 if case in CONCURRENT else 1
                    samples[label][case].append(measure(callers[label], payload(label, case), requests[case], clients))
    finally:
        for name in endpoints:
            hook.delete_endpoint(name)
        for proc in mlflow_procs:
            stop_mlflow(proc)

    ratios: dict[str, Any] = {}
    met = True
    for name, num, den, case, figure, bound, kind in TARGETS:
        entry = ratio(samples, num, den, case, figure)
        entry["target"] = f"{'at most' if kind == 'max' else 'at least'} {bound}"
        entry["target_met"] = entry["median"] <= bound if kind == "max" else entry["median"] >= bound
        met = met and entry["target_met"]
        ratios[name] = entry
    for name, num, den, case, figure in REFERENCE_RATIOS:
        ratios[name] = ratio(samples, num, den, case, figure)
    return {
        "model": model["metrics"],
        "repeats": repeats,
        "rows": {label: {case: summarise(s) for case, s in cases.items()} for label, cases in samples.items()},
        "ratios": ratios,
        "target": (
            "1-row p50 at most 1.3x in-process and 0.8x MLflow's; 100-row p50 at most 0.8x MLflow's; "
            "8-client throughput (2 processes) at least 2x MLflow's; all at the median of the repeats"
        ),
        "target_met": met,
    }


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
