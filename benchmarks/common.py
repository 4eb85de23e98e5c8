"""Shared helpers for the benchmarks: timing statistics, process-tree memory, a scratch directory."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
WORK = BENCH_DIR / ".work"


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def spread(values: list[float], digits: int = 2) -> tuple[float, float, float]:
    """``(median, min, max)`` of repeated measurements, rounded: a figure and its spread."""
    return (round(median(values), digits), round(min(values), digits), round(max(values), digits))


def spread_text(values: list[float], digits: int = 2) -> str:
    med, low, high = spread(values, digits)
    return f"{med} ({low}–{high})"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``values``."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return float(ordered[rank - 1])


def machine() -> dict[str, Any]:
    import psutil

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def versions() -> dict[str, str]:
    from importlib.metadata import version

    out = {}
    for dist in ("apache-airflow", "apache-airflow-providers-amazon", "autogluon.tabular", "boto3", "mlflow", "moto"):
        try:
            out[dist] = version(dist)
        except Exception:
            out[dist] = "not installed"
    return out


class TreeMemorySampler:
    """Samples the summed RSS of a process and all its descendants; keeps the peak.

    Summed RSS counts pages shared between forked workers more than once, so it is an upper
    bound on the memory the job holds.
    """

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.peak_bytes = 0
        self._pids: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def watch(self, pid: int) -> None:
        self._pids.add(pid)

    def start(self) -> TreeMemorySampler:
        self._thread.start()
        return self

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak_bytes

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            total = 0
            for pid in list(self._pids):
                try:
                    root = psutil.Process(pid)
                    procs = [root, *root.children(recursive=True)]
                except psutil.Error:
                    continue
                for proc in procs:
                    try:
                        total += proc.memory_info().rss
                    except psutil.Error:
                        pass
            self.peak_bytes = max(self.peak_bytes, total)
            time.sleep(self.interval)


def python_in_fresh_interpreter(code: str, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    """Run ``code`` in a new interpreter of this environment and return its stdout."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark subprocess failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(message: str, *args: Any) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] " + (message % args if args else message), flush=True)


def bench_hook(root: Path | None = None) -> Any:
    from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

    return AutoGluonCloudHook(aws_conn_id=None, backend="local", local_root=str(root or WORK / "local-backend"))


def trained_model(time_limit: int = 40) -> dict[str, Any]:
    """A model on the bundled churn dataset (trained once; reused by later runs).

    Three gradient-boosting families and their weighted ensemble: what ``medium_quality`` gives on
    a small table, without the neural networks this machine's CPU would make slow to train.
    """
    fit_args = {"time_limit": time_limit, "hyperparameters": {"GBM": {}, "CAT": {}, "XGB": {}}}
    return cached_fit("bench-model", fit_args)


def cached_fit(name: str, fit_args: dict[str, Any]) -> dict[str, Any]:
    """Fit on the bundled churn dataset on the local backend, or reuse an earlier run's fit.

    Reused only with the same fit arguments, serving script and packing: the model carries the
    ``code/serve.py`` it was trained with, and ``archives.py`` decides the order of its members
    (what a job streaming the archive reads first), so a change to either means a new model, or
    the figures would measure the old code.
    """
    import hashlib
    import json

    package = REPO / "airflow_autogluon_cloud"
    digest = hashlib.sha256()
    container = package / "container"
    for source in (container / "serve.py", container / "data_profile.py", package / "archives.py"):
        digest.update(source.read_bytes())
    code_hash = digest.hexdigest()[:16]
    marker = WORK / f"{name}.json"
    if marker.exists():
        cached = json.loads(marker.read_text())
        if (
            Path(cached["model_artifact_uri"]).exists()
            and cached.get("code_sha256") == code_hash
            and cached.get("fit_args") == fit_args
        ):
            return cached
    hook = bench_hook()
    log("training %s (%s)", name, fit_args)
    sub = hook.start_training(
        job_name=f"ag-af-{name}-{int(time.time())}",
        train_data=str(REPO / "example_dags" / "data" / "customer_churn.csv"),
        predictor_init_args={"label": "churned", "eval_metric": "roc_auc"},
        predictor_fit_args=fit_args,
    )
    hook.wait_for_job("training", sub.job_name, check_interval=2, max_check_interval=5, stream_log=False)
    result = {**hook.training_result(sub.job_name), "code_sha256": code_hash, "fit_args": fit_args}
    WORK.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(result))
    return result


def quiet_logging() -> None:
    import logging

    logging.getLogger().setLevel(logging.WARNING)
    for name in ("airflow", "airflow.task", "airflow_autogluon_cloud"):
        logging.getLogger(name).setLevel(logging.WARNING)
