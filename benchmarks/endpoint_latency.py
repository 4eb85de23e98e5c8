"""4. Real-time endpoint: latency and throughput of the local endpoint, in-process, and MLflow.

One model (trained on the bundled churn data) is served three ways and sent the same CSV bodies:

- the local backend's endpoint (``AGDeployOperator``'s server: ``POST /invocations``),
- the same loaded predictor called in-process (``predictor.predict`` on a ready DataFrame: the limit),
- MLflow's model server (``mlflow models serve --env-manager local``) with an ``mlflow.pyfunc``
  wrapper around the same predictor.

The local endpoint answers with the prediction and every class probability; the MLflow wrapper
and the in-process call return the prediction only, which is less work. MLflow's server runs
with its defaults (one uvicorn worker); MLflow is already in the project's environment (the
``sagemaker`` package depends on it), so nothing is installed for it.

Each HTTP client keeps its connection alive. "8 clients" runs 8 threads, each with its own
connection (or, in-process, its own thread calling ``predict``).
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

from common import BENCH_DIR, WORK, bench_hook, free_port, log, percentile, trained_model

HOST = "127.0.0.1"


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

    def worker() -> None:
        call = make_caller()
        call(body)  # warm the connection and any lazy state; not timed
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
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, first: {errors[0]}")
    return {
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
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


def start_mlflow(predictor_dir: Path) -> tuple[subprocess.Popen, int, Path]:
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
    port = free_port()
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"}
    log_path = WORK / "mlflow-serve.log"
    proc = subprocess.Popen(
        [
            f"{bin_dir}/mlflow",
            "models",
            "serve",
            "-m",
            str(model_path),
            "--env-manager",
            "local",
            "-h",
            HOST,
            "-p",
            str(port),
        ],
        env=env,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_http(port, "/ping", 180, proc)
    except Exception as err:
        proc.kill()
        raise RuntimeError(f"MLflow server did not start; see {log_path}:\n{log_path.read_text()[-3000:]}") from err
    return proc, port, model_path


def run(quick: bool = False) -> dict[str, Any]:
    import pandas as pd

    from airflow_autogluon_cloud.example_data import make_churn

    model = trained_model()
    hook = bench_hook()
    rows_frame = make_churn(100, seed=11, with_label=False)
    bodies = {1: rows_frame.head(1).to_csv(index=False).encode(), 100: rows_frame.to_csv(index=False).encode()}
    frames = {n: pd.read_csv(io.BytesIO(body)) for n, body in bodies.items()}
    n_seq = {1: 100 if quick else 400, 100: 40 if quick else 150}
    n_conc = {1: 200 if quick else 800, 100: 80 if quick else 240}

    results: dict[str, Any] = {}

    def measure_all(label: str, factory: Callable[[], Callable[[Any], None]], payloads: dict[int, Any]) -> None:
        results[label] = {}
        for n in (1, 100):
            log("endpoint: %s, %d-row requests", label, n)
            results[label][f"{n}_row_sequential"] = measure(factory, payloads[n], n_seq[n], 1)
            results[label][f"{n}_row_8_clients"] = measure(factory, payloads[n], n_conc[n], 8)

    # Each way of serving is measured alone: nothing else is loaded or running meanwhile.
    log("endpoint: deploying the local endpoint")
    endpoint = f"ag-af-bench-{int(time.time())}"
    deployed = hook.finish_deploy(hook.start_deploy(endpoint_name=endpoint, model_uri=model["model_artifact_uri"]))
    port = int(deployed["url"].rsplit(":", 1)[1].split("/")[0])
    try:
        measure_all("local endpoint (this provider)", http_caller(port), bodies)
    finally:
        hook.delete_endpoint(endpoint)

    predictor_dir = WORK / "inprocess-predictor"
    shutil.rmtree(predictor_dir, ignore_errors=True)
    predictor = hook.to_local_predictor(model["model_artifact_uri"], predictor_dir)
    predictor.persist()
    predict = predictor.predict
    measure_all("in-process predictor.predict", lambda: predict, frames)
    predictor.unpersist()  # free its memory before the MLflow server loads its own copy

    log("endpoint: starting the MLflow model server")
    mlflow_proc, mlflow_port, _ = start_mlflow(predictor_dir)
    try:
        measure_all("MLflow model server", http_caller(mlflow_port), bodies)
    finally:
        os.killpg(mlflow_proc.pid, 15)
        mlflow_proc.wait(30)

    ours = results["local endpoint (this provider)"]
    limit = results["in-process predictor.predict"]
    mlflow = results["MLflow model server"]
    budget = 1.5 * limit["1_row_sequential"]["p50_ms"] + 2
    ahead = all(
        ours[k]["p50_ms"] <= mlflow[k]["p50_ms"]
        and ours[k]["p99_ms"] <= mlflow[k]["p99_ms"]
        and ours[k]["rps"] >= mlflow[k]["rps"]
        for k in ours
    )
    return {
        "model": model["metrics"],
        "rows": results,
        "one_row_p50_budget_ms": round(budget, 2),
        "ratio_1_row_p50_to_in_process": round(
            ours["1_row_sequential"]["p50_ms"] / limit["1_row_sequential"]["p50_ms"], 3
        ),
        "ratio_1_row_p50_to_mlflow": round(
            ours["1_row_sequential"]["p50_ms"] / mlflow["1_row_sequential"]["p50_ms"], 3
        ),
        "target": "1-row p50 within 1.5x in-process + 2 ms; ahead of MLflow on every row",
        "target_met": ours["1_row_sequential"]["p50_ms"] <= budget and ahead,
        "ahead_of_mlflow_everywhere": ahead,
    }


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
