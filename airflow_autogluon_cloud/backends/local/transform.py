"""A local batch transform: score a CSV file with a model's own serving script, in chunks.

Mirrors SageMaker's ``SplitType=Line``/``MultiRecord`` batch transform: the input is split on line
boundaries into mini-batches, each goes through the model's ``transform_fn`` exactly as a request
to its endpoint would, and the answers are appended in input order (``AssembleWith=Line``).

Memory stays bounded whatever the input size: the file is read one chunk at a time and at most
two chunks per worker are in flight. ``instance_count`` worker processes share the work (each
loads the model once). The result is written to a temporary file and moved into place at the
end, so a partial result never appears at the final path.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_autogluon_cloud.backends.local import batch_worker
from airflow_autogluon_cloud.backends.local.jobkit import fetch_model, log, make_storage
from airflow_autogluon_cloud.backends.local.state import MODEL
from airflow_autogluon_cloud.status import JobStatus
from airflow_autogluon_cloud.storage import is_s3_uri, join_uri, local_path

if TYPE_CHECKING:
    from airflow_autogluon_cloud.backends.local.jobkit import JobRun

#: Rows per mini-batch; SageMaker's MaxPayloadInMB bounds a batch's bytes too.
DEFAULT_CHUNK_ROWS = 20_000
_PROGRESS_EVERY_SECONDS = 2.0


def iter_chunks(path: Path, rows: int, max_bytes: int) -> Iterator[tuple[str, str, int]]:
    """Yield ``(header, chunk, row_count)`` mini-batches of whole lines, in order."""
    with open(path, encoding="utf-8", newline="") as fh:
        header = fh.readline()
        lines: list[str] = []
        size = 0
        for line in fh:
            if not line.strip():
                continue
            if lines and (len(lines) >= rows or size + len(line) > max_bytes):
                yield header, "".join(lines), len(lines)
                lines, size = [], 0
            lines.append(line)
            size += len(line)
        if lines:
            yield header, "".join(lines), len(lines)


def run_transform(runner: JobRun) -> None:
    """Score the job's input with its model and record the output (the body of a transform job)."""
    spec = runner.record.data["spec"]
    aws = runner.record.data.get("aws")
    # The job's Environment reaches the serving script as on SageMaker (workers inherit it).
    os.environ.update({str(k): str(v) for k, v in (spec.get("environment") or {}).items()})
    model = runner.store.get(MODEL, spec["model_name"])
    if model is None:
        raise FileNotFoundError(f"Model {spec['model_name']!r} does not exist on the local backend")
    model_uri = model.data["model_data_uri"]
    workdir = runner.workdir
    model_dir = workdir / "model"
    log("Transform job %s: model %s (%s)", runner.name, spec["model_name"], model_uri)
    fetch_model(model_uri, model_dir, aws)

    input_uri = spec["input_uri"]
    if is_s3_uri(input_uri):
        input_path = workdir / "input" / input_uri.rsplit("/", 1)[-1]
        make_storage(input_uri, aws).download_file(input_uri, input_path)
    else:
        input_path = local_path(input_uri)
    output_uri = join_uri(spec["output_path"], input_path.name + ".out")
    partial = workdir / (input_path.name + ".out.partial")

    workers = max(1, int(spec.get("instance_count") or 1))
    chunk_rows = int(spec.get("environment", {}).get("AG_BATCH_CHUNK_ROWS", DEFAULT_CHUNK_ROWS))
    max_bytes = int(spec.get("max_payload_mb") or 6) * 1024 * 1024
    content_type, accept = spec["content_type"], spec["accept"]
    log("Scoring %s with %d worker(s), %d rows per mini-batch", input_path.name, workers, chunk_rows)

    started = time.monotonic()
    last_progress = started
    done_rows = 0
    chunks = iter_chunks(input_path, chunk_rows, max_bytes)
    with open(partial, "wb") as out:
        if workers == 1:
            batch_worker.init_worker(str(model_dir))
            for header, chunk, count in chunks:
                runner.check_stop()
                out.write(batch_worker.score(header + chunk, content_type, accept))
                done_rows += count
                if time.monotonic() - last_progress > _PROGRESS_EVERY_SECONDS:
                    last_progress = time.monotonic()
                    log("Scored %d rows (%.0f rows/s)", done_rows, done_rows / (last_progress - started))
        else:
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(workers, initializer=batch_worker.init_worker, initargs=(str(model_dir),)) as pool:
                pending: collections.deque[tuple[Any, int]] = collections.deque()
                for header, chunk, count in chunks:
                    runner.check_stop()
                    # Bounded window: at most two mini-batches per worker in flight, results in order.
                    pending.append(
                        (pool.apply_async(batch_worker.score, (header + chunk, content_type, accept)), count)
                    )
                    while len(pending) >= 2 * workers:
                        result, n = pending.popleft()
                        out.write(result.get())
                        done_rows += n
                    if time.monotonic() - last_progress > _PROGRESS_EVERY_SECONDS:
                        last_progress = time.monotonic()
                        log("Scored %d rows (%.0f rows/s)", done_rows, done_rows / (last_progress - started))
                while pending:
                    result, n = pending.popleft()
                    out.write(result.get())
                    done_rows += n
    elapsed = time.monotonic() - started
    log("Scored %d rows in %.1fs (%.0f rows/s)", done_rows, elapsed, done_rows / max(elapsed, 1e-9))
    make_storage(output_uri, aws).upload_file(partial, output_uri)
    partial.unlink()
    runner.finish(JobStatus.COMPLETED, None, artifact_uri=spec["output_path"], output_uri=output_uri, rows=done_rows)
    log("Transform job %s completed: %s", runner.name, output_uri)
