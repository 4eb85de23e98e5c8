"""What every local job process shares: its log lines, storage, channels, stop and finish.

The runner (:mod:`.runner`) and the job bodies it runs (:mod:`.transform`) both import this
module and never each other's. Nothing here imports Airflow at module level: batch-transform
workers are spawned processes that re-import the runner, and Airflow would add ~1.4 s to each.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_autogluon_cloud.backends.local.state import Record, StateStore
    from airflow_autogluon_cloud.status import JobStatus
    from airflow_autogluon_cloud.storage import Storage


class StopRequested(Exception):
    """SIGTERM arrived: the job is being stopped."""


class MaxRuntimeExceeded(Exception):
    """The entry script ran longer than the job's ``max_runtime``."""


class JobRun(Protocol):
    """The running job as a job body sees it (implemented by :class:`.runner.Runner`)."""

    store: StateStore
    record: Record
    name: str
    workdir: Path
    #: When the runner process began running the job (seconds since the epoch).
    started_at: float

    def check_stop(self) -> None:
        """Raise :class:`StopRequested` if a stop was asked for."""

    def finish(self, status: JobStatus, reason: str | None = None, **data: Any) -> None:
        """Record the job's outcome (and extra data) in the state store."""


def log(message: str, *args: object) -> None:
    """A line in the job's log, stamped like the rest of it."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    print(f"{stamp} [local-runner] {message % args if args else message}", flush=True)


def make_storage(uri: str, aws: dict[str, Any] | None) -> Storage:
    """The storage holding ``uri``; for ``s3://``, clients from the job's recorded AWS settings."""
    from airflow_autogluon_cloud.storage import is_s3_uri, storage_for

    if not is_s3_uri(uri):
        return storage_for(uri)
    from airflow_autogluon_cloud.aws import AwsSettings

    return storage_for(uri, AwsSettings.from_dict(aws).client)


def materialise(uri: str, target: Path, aws: dict[str, Any] | None) -> None:
    """Copy every object under the prefix ``uri`` into ``target`` (what a ``File`` channel does)."""
    from airflow_autogluon_cloud.storage import is_s3_uri, local_path

    target.mkdir(parents=True, exist_ok=True)
    storage = make_storage(uri, aws)
    objects = storage.list(uri)
    if not objects:
        raise FileNotFoundError(f"No data under {uri}")
    for obj in objects:
        relative = obj[len(uri.rstrip("/")) :].lstrip("/") or Path(obj).name
        dest = target / relative
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not is_s3_uri(obj):
            try:
                os.link(local_path(obj), dest)  # same filesystem: no copy at all
                continue
            except OSError:
                pass
        storage.download_file(obj, dest)


def fetch_model(
    model_uri: str,
    model_dir: Path,
    aws: dict[str, Any] | None,
    on_member: Callable[[str, Path], None] | None = None,
) -> None:
    """Download ``model.tar.gz`` and unpack it safely into ``model_dir`` (as the serving container does).

    :param on_member: see :func:`~airflow_autogluon_cloud.archives.safe_extract`.
    """
    from airflow_autogluon_cloud.archives import safe_extract

    archive = model_dir.parent / f".{model_dir.name}.model.tar.gz"
    make_storage(model_uri, aws).download_file(model_uri, archive)
    try:
        safe_extract(archive, model_dir, on_member, source=model_uri)
    finally:
        archive.unlink(missing_ok=True)
