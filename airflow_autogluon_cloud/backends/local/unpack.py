"""Unpacking a job's model in a forked child while the job's process imports AutoGluon.

A batch job must unpack ``model.tar.gz`` (as SageMaker does before the container starts) and
import the model's AutoGluon package; both take a second or so for a large model. They run side
by side: a child process unpacks, and the job's process imports. Not a thread: both sides are
busy in Python, and a thread waits for the GIL between each block it decompresses (measured on
a 52 MB bagged model: together they took longer than one after the other).

Which package to import is named in the model's ``training_summary.json``. The child sends its
text as soon as it is unpacked (it comes first in the archives this provider packs), so the
import starts while the models are still being decompressed.
"""

from __future__ import annotations

import os
import signal
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from airflow_autogluon_cloud.backends.local.jobkit import fetch_model

#: Names the model's kind (tabular, time series, multimodal): which AutoGluon package to import.
SUMMARY = "training_summary.json"
#: Forking is safe this early on Linux (one thread, nothing but the standard library loaded); elsewhere
#: (macOS: libraries that are not fork-safe) the model is unpacked first, then the package imported.
_FORK = sys.platform.startswith("linux")
_SUMMARY_MESSAGE, _FAILURE_MESSAGE = b"S", b"F"
_HEADER = struct.Struct("!cI")


class ModelUnpackError(RuntimeError):
    """The child could not unpack the model; ``failure_reason`` is what it reported."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.failure_reason = reason


def _send(fd: int, kind: bytes, payload: bytes) -> None:
    message = _HEADER.pack(kind, len(payload)) + payload
    while message:
        message = message[os.write(fd, message) :]


def _receive(stream: BinaryIO) -> tuple[bytes, bytes] | None:
    """The next message, or ``None`` once the child has closed its end (it has exited)."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    kind, size = _HEADER.unpack(header)
    return kind, stream.read(size)


def unpack_while_importing(
    model_uri: str,
    model_dir: Path,
    aws: dict[str, Any] | None,
    import_package: Callable[[str | None], None],
) -> None:
    """Unpack ``model_uri`` into ``model_dir`` while this process imports pandas and the model's package.

    :param import_package: imports the package named in the summary text it is given (or, given
        ``None``, in the unpacked model's own ``training_summary.json``).
    :raises ModelUnpackError: if the model could not be fetched or unpacked (an unsafe archive,
        a missing object), with the child's reason.
    """
    if not _FORK:
        fetch_model(model_uri, model_dir, aws)
        import_package(None)
        return
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: unpack, report, and leave without the parent's clean-up
        code = 0
        try:
            os.close(read_end)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

            def on_member(name: str, path: Path) -> None:
                if os.path.normpath(name) == SUMMARY:
                    _send(write_end, _SUMMARY_MESSAGE, path.read_bytes())

            fetch_model(model_uri, model_dir, aws, on_member)
        except BaseException as err:
            code = 1
            reason = getattr(err, "failure_reason", None) or f"{type(err).__name__}: {err}"
            _send(write_end, _FAILURE_MESSAGE, str(reason).encode("utf-8", "replace"))
        finally:
            os._exit(code)
    os.close(write_end)
    summary: str | None = None
    failure: str | None = None
    try:
        with os.fdopen(read_end, "rb") as messages:
            import pandas  # noqa: F401  (imported here, it is already loaded when the serving script asks)

            # The summary comes first if the archive has one; else the child's end closing (done).
            message = _receive(messages)
            if message is not None and message[0] == _SUMMARY_MESSAGE:
                summary = message[1].decode("utf-8", "replace")
                import_package(summary)
                message = _receive(messages)
            if message is not None and message[0] == _FAILURE_MESSAGE:
                failure = message[1].decode("utf-8", "replace")
    finally:
        _, status = os.waitpid(pid, 0)
    if failure is not None or status != 0:
        raise ModelUnpackError(failure or f"unpacking {model_uri} ended with status {status}")
    if summary is None:
        import_package(None)
