"""A local batch transform: score a CSV file with a model's own serving script, in chunks.

Mirrors SageMaker's ``SplitType=Line``/``MultiRecord`` batch transform: the input is split on line
boundaries into mini-batches, each goes through the model's ``transform_fn`` exactly as a request
to its endpoint would, and the answers are appended in input order (``AssembleWith=Line``).

Memory stays bounded whatever the input size: the file is scanned for line ends a block at a
time, and at most two mini-batches per worker are in flight. The runner loads the model once
and then forks ``instance_count`` worker processes that inherit it; each is handed the byte
range of a mini-batch and reads it itself, so no rows are pickled between processes. The
result is written to a temporary file and moved into place at the end, so a partial result
never appears at the final path.

With ``SplitType=None`` (time series: a series must never be split; a folder of images) the input
is a prefix of files instead, and each file is one request whose answer is its own ``<file>.out``
(its key below the input prefix, sub-folders kept), as on SageMaker; ``instance_count`` workers
score files side by side.

The runner records when each phase began (``timings`` in the job's state: runner start,
AutoGluon import, model load, workers started, first mini-batch scored, scored, completed).
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_autogluon_cloud.backends.local import batch_worker
from airflow_autogluon_cloud.backends.local.jobkit import log, make_storage
from airflow_autogluon_cloud.backends.local.state import MODEL
from airflow_autogluon_cloud.backends.local.unpack import unpack_while_importing
from airflow_autogluon_cloud.backends.specs import DATA_PROFILE_ENV
from airflow_autogluon_cloud.status import JobStatus
from airflow_autogluon_cloud.storage import is_s3_uri, join_uri, local_path, relative_key

if TYPE_CHECKING:
    from airflow_autogluon_cloud.backends.local.jobkit import JobRun

#: Rows per mini-batch; SageMaker's MaxPayloadInMB bounds a batch's bytes too.
DEFAULT_CHUNK_ROWS = 20_000
#: The first mini-batch is smaller: the first rows are scored (and a model that cannot score the
#: input fails the job) within moments instead of after a whole mini-batch, for one extra model call.
FIRST_CHUNK_ROWS = 1_000
_PROGRESS_EVERY_SECONDS = 2.0
#: The input is scanned for line ends in blocks: a small first one, so that the first mini-batch
#: goes out at once, then blocks of a few mini-batches (at least this many bytes).
_FIRST_BLOCK_BYTES = 1 << 20
_MIN_BLOCK_BYTES = 1 << 22
#: Workers are forked from the runner once it has loaded the model (Linux); spawned elsewhere.
_FORK = sys.platform.startswith("linux")


def iter_ranges(path: Path, rows: int, max_bytes: int, first_rows: int | None = None) -> Iterator[tuple[int, int]]:
    """Byte ranges ``(start, end)`` of whole lines after the header: mini-batches, in order.

    Each holds at most ``rows`` lines (the first at most ``first_rows``, when given) and
    ``max_bytes`` bytes (a single longer line is a mini-batch of its own). Ranges holding only
    blank lines are skipped. The file is read in blocks of a few mini-batches; only newline
    positions are kept, never the rows.
    """
    import numpy as np

    rows = max(1, rows)
    limit = max(1, min(first_rows, rows)) if first_rows else rows  # lines in the next range, at most
    max_bytes = max(1, max_bytes)
    block_size = min(_FIRST_BLOCK_BYTES, max_bytes)
    steady_block = max(2 * max_bytes, _MIN_BLOCK_BYTES)
    with open(path, "rb") as fh:
        fh.readline()  # the header
        start = fh.tell()
        size = os.fstat(fh.fileno()).st_size
        while start < size:
            block = os.pread(fh.fileno(), block_size, start)
            if not block:
                break
            at_end = start + len(block) >= size
            ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10) + 1  # just past each newline
            if not at_end and len(ends) == 0:
                block_size *= 2  # one line longer than the block: read more of it
                continue
            if at_end and (len(ends) == 0 or ends[-1] != len(block)):
                ends = np.append(ends, len(block))  # the last line has no newline
            first = 0  # index into ends of the first line of the next range
            offset = 0  # where that range starts, within the block
            while first < len(ends):
                last = min(first + limit, len(ends)) - 1
                if ends[last] - offset > max_bytes:
                    # Fewer lines: as many as fit in max_bytes, and at least one.
                    last = max(first, int(np.searchsorted(ends, offset + max_bytes, side="right")) - 1)
                if (
                    last == len(ends) - 1
                    and not at_end
                    and last - first + 1 < limit
                    and ends[last] - offset < max_bytes
                ):
                    break  # this range may continue in the next block
                end = int(ends[last])
                if not block[offset:end].isspace():
                    yield start + offset, start + end
                    limit = rows
                offset, first = end, last + 1
            if offset == 0:  # nothing complete in this block: the range needs a larger one
                block_size *= 2
                continue
            start += offset
            block_size = max(block_size, steady_block)


def _library_threads(workers: int) -> None:
    """Give each worker its share of the cores for OpenMP (LightGBM, XGBoost), unless the job set it.

    Set before AutoGluon is imported: the OpenMP runtime reads it once, and forked workers inherit it.
    """
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))


def run_transform(runner: JobRun) -> None:
    """Score the job's input with its model and record the output (the body of a transform job)."""
    timings: dict[str, float] = {"runner_started": runner.started_at}
    spec = runner.record.data["spec"]
    aws = runner.record.data.get("aws")
    # The job's Environment reaches the serving script as on SageMaker (workers inherit it).
    os.environ.update({str(k): str(v) for k, v in (spec.get("environment") or {}).items()})
    profile_uri = _local_profile(runner)
    model = runner.store.get(MODEL, spec["model_name"])
    if model is None:
        raise FileNotFoundError(f"Model {spec['model_name']!r} does not exist on the local backend")
    model_uri = model.data["model_data_uri"]
    workdir = runner.workdir
    model_dir = workdir / "model"
    workers = max(1, int(spec.get("instance_count") or 1))
    _library_threads(workers)
    # The serving code may size its own process pools by it (the job's workers are its parallelism).
    os.environ["AG_BATCH_WORKER_PROCESSES"] = str(workers)
    log("Transform job %s: model %s (%s)", runner.name, spec["model_name"], model_uri)
    unpack_while_importing(model_uri, model_dir, aws, lambda summary: batch_worker.preimport(str(model_dir), summary))
    timings["imported"] = time.time()
    if spec.get("split_type") == "None":
        _score_whole_files(runner, spec, aws, model_dir, workers, timings, profile_uri)
        return

    input_uri = spec["input_uri"]
    if is_s3_uri(input_uri):
        input_path = workdir / "input" / input_uri.rsplit("/", 1)[-1]
        make_storage(input_uri, aws).download_file(input_uri, input_path)
    else:
        input_path = local_path(input_uri)
    output_uri = join_uri(spec["output_path"], input_path.name + ".out")
    partial = workdir / (input_path.name + ".out.partial")

    chunk_rows = int(spec.get("environment", {}).get("AG_BATCH_CHUNK_ROWS", DEFAULT_CHUNK_ROWS))
    max_bytes = int(spec.get("max_payload_mb") or 6) * 1024 * 1024
    content_type, accept = spec["content_type"], spec["accept"]
    with open(input_path, "rb") as fh:
        header = fh.readline()
    if not header.endswith(b"\n"):
        header += b"\n"
    source = str(input_path)
    # Loaded once here; the workers are forked from this process afterwards and inherit the model
    # (nothing has been predicted yet, so no OpenMP thread pool exists to be broken by the fork),
    # frozen out of the garbage collector's sight, so a worker's collections never touch, and so
    # copy, those pages.
    batch_worker.init_worker(str(model_dir))
    timings["model_loaded"] = time.time()
    log("Scoring %s with %d worker(s), %d rows per mini-batch", input_path.name, workers, chunk_rows)

    progress = _Progress(runner, timings)
    ranges = iter_ranges(input_path, chunk_rows, max_bytes, first_rows=FIRST_CHUNK_ROWS)
    with open(partial, "wb") as out:
        if workers == 1:
            timings["workers_started"] = time.time()
            for start, end in ranges:
                runner.check_stop()
                answer, count = batch_worker.score_range(source, header, start, end, content_type, accept)
                out.write(answer)
                progress.add(count)
        else:
            # Elsewhere than Linux (macOS: libraries that are not fork-safe) each worker loads the model itself.
            init: Callable[..., None] = batch_worker.forked if _FORK else batch_worker.init_worker
            initargs: tuple[str, ...] = () if _FORK else (str(model_dir),)
            ctx: Any = multiprocessing.get_context("fork" if _FORK else "spawn")
            with ctx.Pool(workers, initializer=init, initargs=initargs) as pool:
                timings["workers_started"] = time.time()
                pending: collections.deque[Any] = collections.deque()
                for start, end in ranges:
                    runner.check_stop()
                    # Bounded window: at most two mini-batches per worker in flight, results in order.
                    args = (source, header, start, end, content_type, accept)
                    pending.append(pool.apply_async(batch_worker.score_range, args))
                    while len(pending) >= 2 * workers:
                        answer, count = _take(runner, pending.popleft())
                        out.write(answer)
                        progress.add(count)
                while pending:
                    answer, count = _take(runner, pending.popleft())
                    out.write(answer)
                    progress.add(count)
    timings["scored"] = time.time()
    done_rows = progress.rows
    elapsed = timings["scored"] - timings["workers_started"]
    log("Scored %d rows in %.1fs (%.0f rows/s)", done_rows, elapsed, done_rows / max(elapsed, 1e-9))
    _publish(partial, output_uri, aws)
    if profile_uri:
        _upload_profile(runner.workdir / "data_profile", profile_uri, aws)
    timings["completed"] = time.time()
    log("Phases: %s", ", ".join(f"{k} +{v - timings['runner_started']:.3f}s" for k, v in timings.items()))
    runner.finish(
        JobStatus.COMPLETED,
        None,
        artifact_uri=spec["output_path"],
        output_uri=output_uri,
        rows=done_rows,
        first_rows=progress.first_rows,
        timings=timings,
    )
    log("Transform job %s completed: %s", runner.name, output_uri)


def _score_whole_files(
    runner: JobRun,
    spec: dict[str, Any],
    aws: dict[str, Any] | None,
    model_dir: Path,
    workers: int,
    timings: Any,
    profile_uri: str | None,
) -> None:
    """``SplitType=None``: every file under the input prefix is one request; its answer is ``<file>.out``."""
    input_uri = spec["input_uri"]
    storage = make_storage(input_uri, aws)
    sources = [uri for uri in storage.list(input_uri) if not uri.rsplit("/", 1)[-1].startswith(".")]
    if not sources:
        raise FileNotFoundError(f"The transform input {input_uri} holds no file")
    keys = [relative_key(input_uri, uri) for uri in sources]
    paths = []
    for uri, key in zip(sources, keys, strict=True):
        if is_s3_uri(uri):
            path = runner.workdir / "input" / key
            storage.download_file(uri, path)
        else:
            path = local_path(uri)
        paths.append(path)
    content_type, accept = spec["content_type"], spec["accept"]
    batch_worker.init_worker(str(model_dir))
    timings["model_loaded"] = time.time()
    log("Scoring %d file(s) with %d worker(s), one request per file", len(paths), workers)
    progress = _Progress(runner, timings)
    timings["workers_started"] = time.time()

    def publish(number: int, answer: bytes, rows: int) -> None:
        partial = runner.workdir / f"answer-{number}.out.partial"
        partial.write_bytes(answer)
        _publish(partial, join_uri(spec["output_path"], keys[number] + ".out"), aws)
        progress.add(rows)

    if workers == 1 or len(paths) == 1:
        for number, path in enumerate(paths):
            runner.check_stop()
            publish(number, *batch_worker.score_file(str(path), content_type, accept))
    else:
        ctx: Any = multiprocessing.get_context("fork" if _FORK else "spawn")
        init: Callable[..., None] = batch_worker.forked if _FORK else batch_worker.init_worker
        with ctx.Pool(min(workers, len(paths)), initializer=init, initargs=() if _FORK else (str(model_dir),)) as pool:
            pending = [
                (path, pool.apply_async(batch_worker.score_file, (str(path), content_type, accept))) for path in paths
            ]
            for number, (_, result) in enumerate(pending):
                publish(number, *_take(runner, result))
    timings["scored"] = time.time()
    log("Scored %d file(s): %d answer rows", len(paths), progress.rows)
    if profile_uri:
        _upload_profile(runner.workdir / "data_profile", profile_uri, aws)
    timings["completed"] = time.time()
    runner.finish(
        JobStatus.COMPLETED,
        None,
        artifact_uri=spec["output_path"],
        output_uri=spec["output_path"],
        rows=progress.rows,
        first_rows=progress.first_rows,
        timings=timings,
    )
    log("Transform job %s completed: %s", runner.name, spec["output_path"])


def _local_profile(runner: JobRun) -> str | None:
    """The serving script writes its per-request profiles into the job's work directory, and they
    are copied to ``AG_DATA_PROFILE_URI`` once every request is scored: a job killed midway leaves
    nothing under its output path (as its output), and the workers need no AWS settings of their own."""
    profile_uri = os.environ.get(DATA_PROFILE_ENV, "")
    if not profile_uri:
        return None
    os.environ[DATA_PROFILE_ENV] = str(runner.workdir / "data_profile")
    return profile_uri


def _upload_profile(directory: Path, profile_uri: str, aws: dict[str, Any] | None) -> None:
    if not directory.is_dir():  # nothing was profiled (a kind whose requests are not profiled)
        return
    storage = make_storage(profile_uri, aws)
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.endswith(".partial")):
        storage.upload_file(path, join_uri(profile_uri, path.relative_to(directory).as_posix()))


def _publish(partial: Path, output_uri: str, aws: dict[str, Any] | None) -> None:
    """Put the finished output at ``output_uri`` at once: renamed there when it is a local path on the
    same filesystem (no copy of what may be gigabytes), uploaded otherwise."""
    if not is_s3_uri(output_uri):
        target = local_path(output_uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(partial, target)
            return
        except OSError:  # another filesystem
            pass
    make_storage(output_uri, aws).upload_file(partial, output_uri)
    partial.unlink()


def _take(runner: JobRun, result: Any) -> tuple[bytes, int]:
    """A worker's answer, waiting for it without missing a stop request (a stopped worker never answers)."""
    while not result.ready():
        result.wait(0.5)
        runner.check_stop()
    answer: tuple[bytes, int] = result.get()
    return answer


class _Progress:
    """Rows scored so far, a log line every few seconds, and when the first ones were scored."""

    def __init__(self, runner: JobRun, timings: dict[str, float]) -> None:
        self.runner = runner
        self.timings = timings
        self.rows = 0
        self.first_rows = 0  # in the first mini-batch
        self.started = self.last = time.monotonic()

    def add(self, rows: int) -> None:
        if "first_scored" not in self.timings:
            self.timings["first_scored"] = time.time()
            self.first_rows = rows
        self.rows += rows
        now = time.monotonic()
        if now - self.last > _PROGRESS_EVERY_SECONDS:
            self.last = now
            log("Scored %d rows (%.0f rows/s)", self.rows, self.rows / (now - self.started))
