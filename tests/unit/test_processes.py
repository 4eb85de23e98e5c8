"""Process liveness through psutil: live, exited, zombie and recycled-PID records, with real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from airflow_autogluon_cloud.backends.local import processes


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])


def test_a_live_process_matches_its_recorded_start_and_not_another():
    child = _sleeper()
    try:
        stamp = processes.process_start_time(child.pid)
        assert stamp is not None
        assert float(stamp) == psutil.Process(child.pid).create_time()
        assert processes.is_alive(child.pid, stamp)
        assert processes.is_alive(child.pid, None)
        # The same PID recorded with another start time is a recycled PID: not our process.
        assert not processes.is_alive(child.pid, repr(float(stamp) - 3600))
        # Stamps from before psutil (kernel clock ticks since boot) or empty ones never match.
        assert not processes.is_alive(child.pid, "123456")
        assert not processes.is_alive(child.pid, "")
    finally:
        child.kill()
        child.wait()


def test_a_zombie_and_an_exited_process_are_dead():
    child = _sleeper()
    stamp = processes.process_start_time(child.pid)
    child.kill()
    deadline = time.monotonic() + 10
    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.05)
    assert psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE  # not reaped yet
    assert processes.process_start_time(child.pid) is None
    assert not processes.is_alive(child.pid, stamp)
    child.wait()
    assert not processes.is_alive(child.pid, stamp)
    assert not processes.is_alive(None, stamp)


def test_spawn_detached_records_a_start_that_terminate_honours(tmp_path):
    pid, stamp = processes.spawn_detached(
        [sys.executable, "-c", "import time; time.sleep(30)"],
        cwd=tmp_path,
        env=dict(os.environ),
        log_path=tmp_path / "log",
    )
    assert stamp
    assert processes.is_alive(pid, stamp)
    # A wrong stamp protects the process: terminate signals nothing.
    assert processes.terminate(pid, repr(float(stamp) + 3600), grace_seconds=1) is False
    assert processes.is_alive(pid, stamp)
    assert processes.terminate(pid, stamp, grace_seconds=5) is True
    deadline = time.monotonic() + 10
    while processes.is_alive(pid, stamp) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not processes.is_alive(pid, stamp)


def test_spawn_detached_reports_a_program_that_cannot_start(tmp_path):
    missing = tmp_path / "no-such-program"
    with pytest.raises(RuntimeError, match=r"Could not start .*no-such-program: FileNotFoundError"):
        processes.spawn_detached([str(missing)], cwd=tmp_path, env=dict(os.environ), log_path=tmp_path / "log")


def test_spawn_detached_runs_in_its_own_session_and_directory_with_the_given_environment(tmp_path):
    code = "import os; print(os.getcwd(), os.getsid(0) == os.getpid(), os.environ['AG_PROBE'], flush=True)"
    pid, _ = processes.spawn_detached(
        [sys.executable, "-c", code], cwd=tmp_path, env={**os.environ, "AG_PROBE": "yes"}, log_path=tmp_path / "log"
    )
    assert pid != os.getpid()
    deadline = time.monotonic() + 10
    while not (tmp_path / "log").read_text().strip() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (tmp_path / "log").read_text().split() == [str(tmp_path), "True", "yes"]
