"""Staging: putting inputs and the entry scripts where jobs read them, by content address.

Every staged object lives at ``<cloud_output_path>/staging/<sha256>/<filename>``, so staging
unchanged data again uploads nothing, and two different files never share a key.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_autogluon_cloud.backends.specs import CONTAINER_SUPPORT_MODULES, SERVE_SCRIPT, TRAIN_SCRIPT
from airflow_autogluon_cloud.datasets import DataInput, prepare_input
from airflow_autogluon_cloud.services import TaskLog
from airflow_autogluon_cloud.settings import ProviderSettings
from airflow_autogluon_cloud.storage import StorageLocator, is_s3_uri, join_uri, sha256_file

CONTAINER_DIR = Path(__file__).resolve().parent.parent / "container"
#: Rows per chunk when scoring input is rewritten: memory stays flat whatever the file's size.
_REWRITE_CHUNK_ROWS = 200_000


@dataclass
class StagedObject:
    """A staged input: its URI, and how many bytes this call actually uploaded (0 if reused)."""

    uri: str
    uploaded_bytes: int
    sha256: str | None = None


def build_code_archive(scripts: tuple[str, ...] = (TRAIN_SCRIPT, SERVE_SCRIPT)) -> bytes:
    """``sourcedir.tar.gz`` with the entry scripts and the modules they import, byte-identical for identical scripts."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w") as tar:
            for script in (*scripts, *CONTAINER_SUPPORT_MODULES):
                data = (CONTAINER_DIR / script).read_bytes()
                info = tarfile.TarInfo(script)
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class StagingService:
    """Validates inputs and stages them under the artifact location.

    :param storage: the storage for any URI.
    :param settings: where artifacts go.
    :param log: where progress is reported (the task log).
    """

    storage: StorageLocator
    settings: ProviderSettings
    log: TaskLog

    def stage_file(self, path: str | os.PathLike[str], filename: str | None = None) -> StagedObject:
        """Copy a local file to ``<cloud_output_path>/staging/<sha256>/<filename>`` (one streaming hash)."""
        path = Path(path)
        digest = sha256_file(path)
        uri = join_uri(self.settings.cloud_output_path, "staging", digest, filename or path.name)
        storage = self.storage(uri)
        size = path.stat().st_size
        if storage.size(uri) == size:
            self.log.info("Staging: %s is already at %s; nothing uploaded.", path.name, uri)
            return StagedObject(uri, 0, digest)
        self.log.info("Staging: uploading %s (%.1f MB) to %s", path.name, size / 1e6, uri)
        storage.upload_file(path, uri)
        return StagedObject(uri, size, digest)

    def stage_bytes(self, data: bytes, filename: str) -> StagedObject:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / filename
            path.write_bytes(data)
            return self.stage_file(path, filename)

    def prepare_data(self, data: Any, parameter: str, required_columns: list[str] | None = None) -> DataInput:
        """Validate a DataFrame, local file or ``s3://`` URI as an input, before anything is created."""
        s3 = self.storage(data) if isinstance(data, str) and is_s3_uri(data) else None
        return prepare_input(data, parameter, required_columns=required_columns, s3_storage=s3)

    def stage_data(self, data: Any, parameter: str, required_columns: list[str] | None = None) -> StagedObject:
        """Stage a DataFrame, local file or ``s3://`` URI as an input; S3 inputs are used in place."""
        prepared = self.prepare_data(data, parameter, required_columns)
        try:
            return self.stage_prepared(prepared)
        finally:
            prepared.cleanup()

    def stage_prepared(self, prepared: DataInput) -> StagedObject:
        if prepared.s3_uri is not None:
            return StagedObject(prepared.s3_uri, 0)
        assert prepared.local_path is not None
        name = f"{prepared.parameter}{''.join(prepared.local_path.suffixes[-2:]) or '.csv'}"
        if prepared.temporary:
            name = f"{prepared.parameter}.csv"
        return self.stage_file(prepared.local_path, name)

    def stage_parts(self, paths: list[Path], folder: str, root: Path | None = None) -> StagedObject:
        """Stage files together under ``<cloud_output_path>/staging/<sha256 of all>/<folder>/``.

        The URI returned is that prefix (with a trailing ``/``): a transform job with ``SplitType=None``
        reads each file under it as one request.

        :param root: files keep their path below it (sub-folders too); default: their names only.
        """
        import hashlib

        names = [path.relative_to(root).as_posix() if root else path.name for path in paths]
        digest = hashlib.sha256()
        for name, path in zip(names, paths, strict=True):
            digest.update(name.encode() + b"\0" + sha256_file(path).encode() + b"\0")
        prefix = join_uri(self.settings.cloud_output_path, "staging", digest.hexdigest(), folder) + "/"
        uploaded = 0
        for name, path in zip(names, paths, strict=True):
            uri = prefix + name
            storage = self.storage(uri)
            if storage.size(uri) != path.stat().st_size:
                storage.upload_file(path, uri)
                uploaded += path.stat().st_size
        self.log.info("Staging: %d part(s) under %s (%.1f MB uploaded)", len(paths), prefix, uploaded / 1e6)
        return StagedObject(prefix, uploaded, digest.hexdigest())

    def stage_code(self, scripts: tuple[str, ...] = (TRAIN_SCRIPT, SERVE_SCRIPT)) -> StagedObject:
        return self.stage_bytes(build_code_archive(scripts), "sourcedir.tar.gz")

    def stage_scoring_input(self, prepared: DataInput, features: list[str]) -> StagedObject:
        """Stage scoring data as CSV with exactly the model's feature columns, in training order.

        SageMaker splits the file into mini-batches whose later parts have no header line, so the
        column order must be the model's own.
        """
        if prepared.s3_uri is not None or not features or prepared.columns == features:
            if prepared.local_path is not None and prepared.local_path.name.endswith(".csv"):
                return self.stage_file(prepared.local_path, "test_data.csv")
            if prepared.s3_uri is not None:
                return StagedObject(prepared.s3_uri, 0)
        import pandas as pd

        assert prepared.local_path is not None
        path = prepared.local_path
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "test_data.csv"
            if path.name.lower().endswith((".csv", ".csv.gz")):
                with open(out, "w", newline="") as fh:
                    for i, chunk in enumerate(pd.read_csv(path, chunksize=_REWRITE_CHUNK_ROWS)):
                        (chunk[features] if features else chunk).to_csv(fh, index=False, header=i == 0)
            else:
                frame = pd.read_parquet(path) if path.suffix in (".parquet", ".pq") else pd.read_json(path, lines=True)
                (frame[features] if features else frame).to_csv(out, index=False)
            return self.stage_file(out, "test_data.csv")
