"""Detached processes that outlive the Airflow worker which started them.

A job runner is started through a short-lived launcher (an isolated ``python -c``) that starts
the runner in a new session and exits at once. The runner is therefore re-parented away
from the worker: it survives the worker being killed, and never lingers as the worker's zombie.

Liveness is judged through psutil (Linux and macOS): the PID must exist, must not be a zombie, and
must have the start time recorded when it was launched, so a recycled PID is never mistaken for our
runner. The start time is stored as a string (``repr`` of psutil's ``create_time()``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

# create_time() is boot time + ticks since boot, and the boot time follows wall-clock corrections
# (NTP), so two readings for one process may differ slightly. A recycled PID belongs to a process
# started after ours ended, and PIDs wrap only after pid_max starts: far more than a second apart.
_START_TOLERANCE_SECONDS = 1.0


def process_start_time(pid: int) -> str | None:
    """The start time of ``pid`` (``repr`` of seconds since the epoch), or ``None`` if it is gone."""
    import psutil  # here: importing this module stays cheap for a runner that never asks

    try:
        process = psutil.Process(pid)
        if process.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
            return None
        return repr(process.create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def _same_start(current: str, recorded: str) -> bool:
    try:
        return abs(float(current) - float(recorded)) <= _START_TOLERANCE_SECONDS
    except ValueError:
        # A record from before psutil (kernel clock ticks) or an empty stamp: cannot be ours.
        return False


def is_alive(pid: int | None, start_time: str | None) -> bool:
    """Whether the process recorded as (``pid``, ``start_time``) is still running."""
    if not pid:
        return False
    current = process_start_time(pid)
    return current is not None and (start_time is None or _same_start(current, start_time))


#: The launcher: an isolated interpreter without ``site`` (it starts in about 10 ms, where one
#: importing this package took about 40), which forks the process in a new session and exits, so
#: the process is nobody's child and leaves no zombie. A failed ``exec`` is reported through a
#: close-on-exec pipe (nothing read: it succeeded), as :mod:`subprocess` does.
_LAUNCHER = """
import json, os, sys
spec = json.loads(sys.argv[1])
read_end, write_end = os.pipe()  # close-on-exec, as every descriptor Python opens
pid = os.fork()
if pid == 0:
    try:
        os.setsid()
        os.chdir(spec["cwd"])
        log = os.open(spec["log_path"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.execv(spec["argv"][0], spec["argv"])
    except BaseException as err:
        os.write(write_end, f"{type(err).__name__}: {err}".encode())
    os._exit(127)
os.close(write_end)
failure = os.read(read_end, 4096)
if failure:
    os.waitpid(pid, 0)
    sys.exit(failure.decode())
print(pid, flush=True)
"""


def spawn_detached(
    argv: list[str], *, cwd: str | os.PathLike[str], env: dict[str, str], log_path: str | os.PathLike[str]
) -> tuple[int, str]:
    """Start ``argv`` detached, appending its stdout and stderr to ``log_path``.

    :param argv: the program and its arguments; the program's path, not a name to look up on ``PATH``.
    :return: the PID and start time of the detached process.
    """
    spec = json.dumps({"argv": [str(a) for a in argv], "cwd": str(cwd), "log_path": str(log_path)})
    launcher = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _LAUNCHER, spec],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if launcher.returncode != 0:
        raise RuntimeError(f"Could not start {argv[0]}: {launcher.stderr.strip()}")
    pid = int(launcher.stdout.strip())
    start = process_start_time(pid)
    if start is None:
        # It already exited (or failed at once); the caller reads its log and exit status.
        start = ""
    return pid, start


def terminate(pid: int | None, start_time: str | None, *, grace_seconds: float = 10.0) -> bool:
    """Send SIGTERM to the process group led by ``pid``, then SIGKILL after the grace period.

    :return: whether a live process was signalled.
    """
    if not pid or not is_alive(pid, start_time):
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        if not is_alive(pid, start_time):
            return True
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True
