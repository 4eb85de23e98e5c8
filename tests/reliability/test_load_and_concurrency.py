"""Load on a local endpoint, and several runs of the main DAG at once."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook
from tests.conftest import REPO

pytestmark = [pytest.mark.faults, pytest.mark.slow]
#: The load is a number of requests, not a duration: a busy machine takes longer, never fails it.
LOAD_REQUESTS = 1200
LOAD_DEADLINE_SECONDS = 900
CLIENTS = 8


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_endpoint_under_eight_clients_for_1200_requests(trained_job, tmp_path):
    from airflow_autogluon_cloud.example_data import make_churn

    hook = AutoGluonCloudHook(aws_conn_id=None, local_root=str(tmp_path / "root"))
    result = hook.finish_deploy(
        hook.start_deploy(endpoint_name="ag-af-load", model_uri=trained_job["model_artifact_uri"])
    )
    host, port = result["url"].removeprefix("http://").split(":")
    pid = hook.backend.store.get("endpoint", "ag-af-load").pid
    rows = make_churn(1000, seed=5, with_label=False)
    bodies = [rows.head(1).to_csv(index=False).encode(), rows.to_csv(index=False).encode()]
    stop = threading.Event()
    counts = {"ok": 0, "errors": [], "pings": 0, "ping_failures": 0}
    lock = threading.Lock()

    def client(i: int) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        n = 0
        while not stop.is_set():
            body = bodies[1] if n % 5 == i % 5 else bodies[0]  # one 1000-row request in five
            n += 1
            try:
                conn.request(
                    "POST",
                    "/invocations",
                    body=body,
                    headers={"Content-Type": "text/csv", "Accept": "application/json"},
                )
                response = conn.getresponse()
                response.read()
                with lock:
                    if response.status == 200:
                        counts["ok"] += 1
                    else:
                        counts["errors"].append(response.status)
            except Exception as err:
                with lock:
                    counts["errors"].append(repr(err))
                conn = http.client.HTTPConnection(host, int(port), timeout=60)

    def pinger() -> None:
        while not stop.is_set():
            conn = http.client.HTTPConnection(host, int(port), timeout=5)
            try:
                conn.request("GET", "/ping")
                ok = conn.getresponse().status == 200
            except Exception:
                ok = False
            finally:
                conn.close()
            with lock:
                counts["pings"] += 1
                counts["ping_failures"] += 0 if ok else 1
            time.sleep(0.5)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)] + [threading.Thread(target=pinger)]
    for t in threads:
        t.start()
    samples = []
    started = time.monotonic()
    try:
        # At least 10 s of samples, so the memory check has a warm-up to skip.
        while (counts["ok"] < LOAD_REQUESTS or len(samples) < 10) and not counts["errors"]:
            assert time.monotonic() - started < LOAD_DEADLINE_SECONDS, f"only {counts['ok']} requests answered"
            time.sleep(1)
            samples.append(_rss_kb(pid))
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    elapsed = time.monotonic() - started
    assert counts["errors"] == []
    assert counts["ok"] >= LOAD_REQUESTS
    assert counts["ping_failures"] == 0
    assert counts["pings"] >= 10  # /ping was asked throughout the load
    warm = samples[len(samples) // 3 :]  # after warm-up
    growth_mb = (max(warm) - min(warm)) / 1024
    assert growth_mb < 50, f"RSS grew by {growth_mb:.0f} MB under steady load: {samples}"
    print(f"load: {counts['ok']} requests in {elapsed:.0f}s, RSS {min(warm) / 1024:.0f}-{max(warm) / 1024:.0f} MB")


def test_five_concurrent_runs_of_the_main_dag_do_not_collide(airflow_db, local_root, tmp_path):
    """Five runs of ag_retrain_and_score at once, each in its own worker process."""
    base = datetime(2026, 12, 1, tzinfo=UTC)
    dates = [base + timedelta(days=7 * i) for i in range(5)]
    script = textwrap.dedent(
        """
        import sys
        from datetime import datetime
        from tests.conftest import run_dag
        ld = datetime.fromisoformat(sys.argv[1])
        run = run_dag("ag_retrain_and_score", logical_date=ld, run_after=ld)
        print("STATE", run.state, run.run_id)
        """
    )
    env = {
        **os.environ,
        "AG_EXAMPLE_TIME_LIMIT": "10",
        # Five writers share Airflow's SQLite metadata database: wait for its lock, don't fail on it.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "tests.reliability.sqlite_settings.CONNECT_ARGS",
        # ... importable from every process Airflow starts, whatever its working directory
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
    }
    # Each worker writes to its own file: with pipes read one after another, a worker whose 64 KB
    # pipe buffer fills blocks on a log line (perhaps holding a database lock) and the run hangs.
    logs = [tmp_path / f"worker-{i}.log" for i in range(len(dates))]
    workers = []
    for d, log in zip(dates, logs, strict=True):
        with log.open("w") as out:
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-c", script, d.isoformat()],
                    cwd=REPO,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
        # dag.test() first syncs the DAG files into Airflow's SQLite database, which does not take
        # five writers at the same instant; a short stagger leaves the runs themselves overlapping.
        time.sleep(4)
    deadline = time.monotonic() + 780  # under pytest's 900 s, so a hang reports what each worker printed
    try:
        for w in workers:
            w.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        for w in workers:
            w.kill()
        tails = "\n".join(f"--- worker {i}:\n{log.read_text()[-2000:]}" for i, log in enumerate(logs))
        pytest.fail(f"the five runs did not finish in 780 s:\n{tails}")
    outputs = [log.read_text() for log in logs]
    for output in outputs:
        assert "STATE success" in output, output[-3000:]
    from tests.conftest import xcom

    run_ids = [o.split("STATE success ", 1)[1].split()[0] for o in outputs]
    fits = [xcom("ag_retrain_and_score", "fit", r) for r in run_ids]
    reports = [xcom("ag_retrain_and_score", "report", r) for r in run_ids]
    assert len({f["job_name"] for f in fits}) == 5
    assert len({f["model_artifact_uri"] for f in fits}) == 5
    assert len({r["scores_uri"] for r in reports}) == 5
    periods = [xcom("ag_retrain_and_score", "prepare_period_data", r) for r in run_ids]
    assert len({p["train"] for p in periods}) == 5
    for period, report in zip(periods, reports, strict=True):
        assert report["scored_rows"] == int(period["score_rows"])  # each run scored its own period
        assert Path(report["scores_uri"]).is_file()
    hook = AutoGluonCloudHook(aws_conn_id=None)
    names = [r.name for r in hook.backend.store.list("training")]
    assert len(names) == len(set(names))
