"""Run one test stage and fail it if it leaves a process running.

Usage: ``python scripts/leakcheck.py --stage NAME -- COMMAND [ARG ...]``

The wrapper makes itself a *child subreaper* (Linux ``PR_SET_CHILD_SUBREAPER``) before it starts
COMMAND. Every process the stage starts, however it detaches (``setsid``, double fork), is then
re-parented to this wrapper instead of to init when its parent exits, so it stays among the
wrapper's descendants. After COMMAND exits, any descendant still alive was started by the stage
and outlived it: an endpoint server, a job runner or an Airflow component a failed test did not
stop. Each is listed (pid, age, command line), killed by pid, and the stage fails.

The exit status is COMMAND's own when nothing leaked (pytest's 5, "no tests collected", is passed
through for the caller to judge), and 3 when something leaked and COMMAND had otherwise passed.
Standard library only: it runs before and outside any virtual environment's packages.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
LEAKED_EXIT_STATUS = 3
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time in clock ticks since boot) of ``pid``, or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces or parentheses.
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0], int(fields[19])


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    text = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    return text if len(text) <= 200 else text[:197] + "..."


def descendants(root: int) -> list[int]:
    """Live (not zombie) processes below ``root``, parents before children."""
    children: dict[int, list[int]] = {}
    states: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat(int(entry.name))
        if stat is not None:
            children.setdefault(stat[0], []).append(int(entry.name))
            states[int(entry.name)] = stat[1]
    found: list[int] = []
    queue = list(children.get(root, []))
    while queue:
        pid = queue.pop(0)
        found.append(pid)
        queue.extend(children.get(pid, []))
    return [pid for pid in found if states.get(pid) not in ("Z", "X")]


def _alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[1] not in ("Z", "X")


def reap_zombies() -> None:
    """Collect the exit status of re-parented children that have already ended."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def wait_reaping(pid: int) -> int:
    """Wait for ``pid`` to exit and return its exit status, reaping the re-parented processes that
    end meanwhile (as init would), so a long stage does not collect zombies."""
    while True:
        ended, status = os.waitpid(-1, 0)
        if ended == pid:
            return os.waitstatus_to_exitcode(status)


def _uptime_ticks() -> float:
    return float(Path("/proc/uptime").read_text().split()[0]) * _CLOCK_TICKS


def kill_all(pids: list[int], grace_seconds: float = 5.0) -> None:
    """SIGTERM each process (and the group it leads), then SIGKILL what is still alive."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            for kill in (os.killpg, os.kill):
                try:
                    kill(pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline:
            reap_zombies()
            if not any(_alive(pid) for pid in pids):
                return
            time.sleep(0.1)


def check(stage: str, settle_seconds: float) -> list[str]:
    """The processes the stage left alive (described), after giving exiting ones a moment."""
    deadline = time.monotonic() + settle_seconds
    while True:
        reap_zombies()
        left = descendants(os.getpid())
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    now = _uptime_ticks()
    described = []
    for pid in left:
        stat = _stat(pid)
        age = (now - stat[2]) / _CLOCK_TICKS if stat else 0.0
        described.append(f"  pid {pid:>7}  running {age:7.1f} s  {_cmdline(pid)}")
    if left:
        print(
            f"\n>> leak check: stage {stage!r} left {len(left)} process(es) running; killing them by pid:",
            *described,
            sep="\n",
            flush=True,
        )
        kill_all(left)
    return described


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True, help="the stage's name, for the report")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds to let exiting processes go")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    become_subreaper()
    child = subprocess.Popen(command)
    # Forward a polite stop to the stage; the leak check below still runs afterwards.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: child.send_signal(signum))
    code = wait_reaping(child.pid)
    leaked = check(args.stage, args.settle)
    if leaked:
        return code if code not in (0, 5) else LEAKED_EXIT_STATUS
    print(f">> leak check: stage {args.stage!r} left nothing running", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
