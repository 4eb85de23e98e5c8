"""What scores a batch transform's mini-batches: the model loaded once, then byte ranges of the input.

Kept apart from :mod:`.transform` so the scoring code imports only this module and the serving
script, not Airflow (which the rest of the package needs for its exception types).

The runner loads the model here once (:func:`init_worker`), then forks its worker processes,
which inherit it. No worker receives rows through a pipe: each is handed the byte range of its
mini-batch in the input file and reads it itself (:func:`score_range`); only the encoded answer
travels back.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from airflow_autogluon_cloud.backends.specs import SERVE_SCRIPT

_serve: Any = None
_model: Any = None
_files: dict[str, int] = {}


def init_worker(model_dir: str) -> None:
    """Load the model through ``code/serve.py``'s ``model_fn``, as the local endpoint does."""
    from airflow_autogluon_cloud.container.local_endpoint import load_handler

    global _serve, _model
    _serve, _model = load_handler(model_dir, os.environ.get("SAGEMAKER_PROGRAM", SERVE_SCRIPT))


def preimport(model_dir: str, summary_text: str | None = None) -> None:
    """Import the model's AutoGluon package ahead of ``model_fn`` (which imports it anyway), so
    that importing and loading are timed apart.

    :param summary_text: the model's ``training_summary.json``, when already read.
    """
    from airflow_autogluon_cloud.container.local_endpoint import import_predictor_package

    import_predictor_package(model_dir, summary_text)


def forked() -> None:
    """In a worker forked from the runner: the default signal handling (the runner's SIGTERM handler
    would keep a worker alive when the pool is shut down)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def count_rows(data: bytes) -> int:
    """The non-blank lines in ``data`` (a run of whole lines; the last may lack its newline)."""
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    if b"\n\n" in data or b"\n\r\n" in data or data[:1] in (b"\n", b"\r") or b"\n " in data or b"\n\t" in data:
        lines = sum(1 for line in data.splitlines() if line.strip())  # blank lines: rare, count them exactly
    return lines


def score(body: bytes | str, content_type: str, accept: str) -> bytes:
    """One mini-batch through ``transform_fn``; the answer always ends with a newline."""
    if _serve is None:
        raise RuntimeError("init_worker() has not loaded a model in this process")
    result = _serve.transform_fn(_model, body, content_type, accept)
    out = result[0] if isinstance(result, tuple) else result
    data = out.encode() if isinstance(out, str) else bytes(out)
    # AssembleWith=Line: every mini-batch's answer ends with a newline.
    return data if data.endswith(b"\n") else data + b"\n"


def read_range(path: str, start: int, end: int) -> bytes:
    """Bytes ``start:end`` of ``path`` (the file stays open in this process for the next range)."""
    fd = _files.get(path)
    if fd is None:
        fd = _files[path] = os.open(path, os.O_RDONLY)
    parts = []
    while start < end:
        part = os.pread(fd, end - start, start)
        if not part:
            raise EOFError(f"{path} ended at byte {start}, before {end}: did it change while being scored?")
        parts.append(part)
        start += len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def score_range(path: str, header: bytes, start: int, end: int, content_type: str, accept: str) -> tuple[bytes, int]:
    """Score the whole lines at bytes ``start:end`` of ``path``, under its ``header`` line.

    :return: the encoded answer and the number of rows scored.
    """
    data = read_range(path, start, end)
    return score(header + data, content_type, accept), count_rows(data)


def score_file(path: str, content_type: str, accept: str) -> tuple[bytes, int]:
    """One whole file as one request (``SplitType=None``): the answer and its rows (lines, after a
    header for CSV)."""
    with open(path, "rb") as fh:
        answer = score(fh.read(), content_type, accept)
    return answer, max(0, count_rows(answer) - (1 if accept.startswith("text/csv") else 0))
