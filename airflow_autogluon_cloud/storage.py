"""Where artifacts live: a local directory or an ``s3://`` location, behind one small interface.

Local writes are atomic (write to a temporary sibling, then rename), so a reader never sees a
partial file at a final path. S3 uploads use boto3's managed transfer, which switches to
multipart above the threshold.
"""

from __future__ import annotations

import abc
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_autogluon_cloud.exceptions import InvalidParameterError


def _invalid(parameter: str, value: object, fix: str) -> InvalidParameterError:
    # Imported only on failure, so the local job runners start without loading Airflow.
    from airflow_autogluon_cloud.exceptions import InvalidParameterError

    return InvalidParameterError(parameter, value, fix)


_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
_HASH_CHUNK = 8 * 1024 * 1024
# 8 MB parts, 10 at a time (the AWS CLI's defaults): against 16 MB x 8 and 32 MB x 4 on an
# S3-compatible server on loopback, in interleaved rounds, the fastest in three runs of four
# (benchmarks/staging.py). s3transfer enlarges parts when a file would need more than 10,000.
MULTIPART_THRESHOLD = 8 * 1024 * 1024
MULTIPART_CHUNKSIZE = 8 * 1024 * 1024
MULTIPART_CONCURRENCY = 10


def is_s3_uri(uri: str) -> bool:
    return uri.startswith("s3://")


def parse_s3_uri(uri: str, parameter: str = "uri") -> tuple[str, str]:
    """Split ``s3://bucket/key`` into bucket and key, rejecting malformed URIs by name."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise _invalid(parameter, uri, "expected a URI of the form s3://bucket/key.")
    rest = uri[len("s3://") :]
    bucket, _, key = rest.partition("/")
    if not _BUCKET_RE.fullmatch(bucket) or ".." in bucket:
        raise _invalid(
            parameter,
            uri,
            "the bucket name must be 3-63 characters of lower-case letters, digits, '.' and '-' (s3://bucket/key).",
        )
    if key.startswith("/") or "//" in key:
        raise _invalid(parameter, uri, "the key contains an empty path segment ('//').")
    return bucket, key


def join_uri(base: str, *parts: str) -> str:
    """Join path segments onto a local path or ``s3://`` prefix with single slashes."""
    out = base.rstrip("/")
    for part in parts:
        part = part.strip("/")
        if part:
            out = f"{out}/{part}"
    return out


def relative_key(prefix: str, uri: str) -> str:
    """``uri``'s key below ``prefix`` (``a/b.png``), as SageMaker names a prefix's outputs after it."""
    if is_s3_uri(uri):
        return (
            uri[len(prefix.rstrip("/")) + 1 :] if uri.startswith(prefix.rstrip("/") + "/") else uri.rsplit("/", 1)[-1]
        )
    try:
        return local_path(uri).relative_to(local_path(prefix)).as_posix()
    except ValueError:
        return local_path(uri).name


def local_path(uri: str) -> Path:
    """The filesystem path of a local URI (a plain path or ``file://``)."""
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    return Path(uri)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Stream a file once and return its SHA-256 hex digest."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class Storage(abc.ABC):
    """Object storage addressed by URI."""

    @abc.abstractmethod
    def exists(self, uri: str) -> bool: ...

    @abc.abstractmethod
    def size(self, uri: str) -> int | None:
        """Size in bytes, or ``None`` when the object does not exist."""

    @abc.abstractmethod
    def upload_file(self, path: str | os.PathLike[str], uri: str) -> None: ...

    @abc.abstractmethod
    def download_file(self, uri: str, path: str | os.PathLike[str]) -> None: ...

    @abc.abstractmethod
    def list(self, prefix: str) -> list[str]:
        """URIs of every object under ``prefix``."""

    @abc.abstractmethod
    def delete(self, uri: str) -> None: ...

    def upload_bytes(self, data: bytes, uri: str) -> None:
        with tempfile.NamedTemporaryFile(delete=False) as fh:
            fh.write(data)
        try:
            self.upload_file(fh.name, uri)
        finally:
            os.unlink(fh.name)

    def read_bytes(self, uri: str) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / "object"
            self.download_file(uri, target)
            return target.read_bytes()

    def read_head(self, uri: str, size: int) -> bytes:
        """The first ``size`` bytes of an object (what a file type is told by)."""
        return self.read_bytes(uri)[:size]


class LocalStorage(Storage):
    """A directory tree on this machine."""

    def exists(self, uri: str) -> bool:
        return local_path(uri).is_file()

    def size(self, uri: str) -> int | None:
        path = local_path(uri)
        return path.stat().st_size if path.is_file() else None

    def upload_file(self, path: str | os.PathLike[str], uri: str) -> None:
        target = local_path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
        shutil.copyfile(path, tmp)
        os.replace(tmp, target)

    def download_file(self, uri: str, path: str | os.PathLike[str]) -> None:
        source = local_path(uri)
        if not source.is_file():
            raise FileNotFoundError(f"No artifact at {uri}")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)

    def read_head(self, uri: str, size: int) -> bytes:
        with local_path(uri).open("rb") as fh:
            return fh.read(size)

    def list(self, prefix: str) -> list[str]:
        root = local_path(prefix)
        if root.is_file():
            return [str(root)]
        if not root.is_dir():
            return []
        return sorted(str(p) for p in root.rglob("*") if p.is_file() and not p.name.endswith(".partial"))

    def delete(self, uri: str) -> None:
        local_path(uri).unlink(missing_ok=True)


class S3Storage(Storage):
    """An S3 (or S3-compatible) bucket reached through a boto3 client built by the hook."""

    def __init__(self, client_factory: Callable[[], Any]) -> None:
        self._client_factory = client_factory
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    @staticmethod
    def _transfer_config() -> Any:
        from boto3.s3.transfer import TransferConfig

        return TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD,
            multipart_chunksize=MULTIPART_CHUNKSIZE,
            max_concurrency=MULTIPART_CONCURRENCY,
            use_threads=True,
        )

    def size(self, uri: str) -> int | None:
        from botocore.exceptions import ClientError

        bucket, key = parse_s3_uri(uri)
        try:
            head = self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return int(head["ContentLength"])

    def exists(self, uri: str) -> bool:
        return self.size(uri) is not None

    def upload_file(self, path: str | os.PathLike[str], uri: str) -> None:
        bucket, key = parse_s3_uri(uri)
        self.client.upload_file(str(path), bucket, key, Config=self._transfer_config())

    def download_file(self, uri: str, path: str | os.PathLike[str]) -> None:
        bucket, key = parse_s3_uri(uri)
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
        self.client.download_file(bucket, key, str(tmp), Config=self._transfer_config())
        os.replace(tmp, target)

    def read_head(self, uri: str, size: int) -> bytes:
        bucket, key = parse_s3_uri(uri)
        body: bytes = self.client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{size - 1}")["Body"].read()
        return body[:size]

    def list(self, prefix: str) -> list[str]:
        bucket, key = parse_s3_uri(prefix)
        out: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=key):
            out.extend(f"s3://{bucket}/{obj['Key']}" for obj in page.get("Contents", []))
        return sorted(out)

    def delete(self, uri: str) -> None:
        bucket, key = parse_s3_uri(uri)
        self.client.delete_object(Bucket=bucket, Key=key)


def storage_for(uri: str, client_factory: Callable[[str], Any] | None = None) -> Storage:
    """The storage that holds ``uri``: S3 for ``s3://`` URIs, the local filesystem otherwise.

    :param client_factory: builds boto3 clients by service name (needed for ``s3://`` only).
    """
    if is_s3_uri(uri):
        if client_factory is None:
            raise ValueError(f"{uri} is on S3 but no AWS client factory was given")
        factory = client_factory
        return S3Storage(lambda: factory("s3"))
    return LocalStorage()


class StorageLocator:
    """The storage holding any URI: one :class:`S3Storage` (one client) for ``s3://``, the local
    filesystem otherwise. What services are given instead of a hook.

    :param client_factory: builds boto3 clients by service name (needed for ``s3://`` only).
    """

    def __init__(self, client_factory: Callable[[str], Any] | None = None) -> None:
        self._client_factory = client_factory
        self._s3: S3Storage | None = None

    def __call__(self, uri: str) -> Storage:
        if not is_s3_uri(uri):
            return LocalStorage()
        if self._s3 is None:
            if self._client_factory is None:
                raise ValueError(f"{uri} is on S3 but no AWS client factory was given")
            factory = self._client_factory
            self._s3 = S3Storage(lambda: factory("s3"))
        return self._s3
