"""Training and scoring inputs: DataFrames, local files or ``s3://`` URIs.

Inputs are checked before anything is staged or created: the file exists, its format is one the
entry scripts read, it has rows, and it has the label column. Checks read only what they need (a
CSV header line, a Parquet footer), never the whole file.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_autogluon_cloud.exceptions import InvalidParameterError
from airflow_autogluon_cloud.storage import Storage, is_s3_uri, parse_s3_uri

SUPPORTED_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq", ".jsonl")
_HEADER_PROBE_BYTES = 256 * 1024
#: The most the input checks read of a file's first line (the header row): a wider header is refused.
MAX_HEADER_BYTES = 8 * 1024 * 1024


def _suffix(name: str) -> str:
    lower = name.lower()
    for suffix in SUPPORTED_SUFFIXES:
        if lower.endswith(suffix):
            return suffix
    return Path(lower).suffix


def is_dataframe(value: Any) -> bool:
    """Whether ``value`` is a pandas DataFrame, without importing pandas."""
    return type(value).__name__ == "DataFrame" and type(value).__module__.startswith("pandas")


@dataclass
class DataInput:
    """A validated input: either a local file to stage, or an S3 object used in place.

    :param local_path: the file to stage (for a DataFrame, a temporary CSV owned by this object).
    :param s3_uri: an ``s3://`` input used as is.
    :param columns: the header, when it could be read.
    """

    parameter: str
    local_path: Path | None = None
    s3_uri: str | None = None
    columns: list[str] | None = None
    temporary: bool = False

    @property
    def filename(self) -> str:
        if self.local_path is not None:
            return self.local_path.name
        assert self.s3_uri is not None
        return self.s3_uri.rsplit("/", 1)[-1]

    def cleanup(self) -> None:
        if self.temporary and self.local_path is not None:
            self.local_path.unlink(missing_ok=True)


def _csv_header(text: str) -> list[str]:
    reader = csv.reader(io.StringIO(text))
    return next(reader, [])


def _first_lines(fh: Any, parameter: str, where: str) -> tuple[bytes, bytes]:
    """The first two lines of a file, each read up to :data:`MAX_HEADER_BYTES` (never more into memory)."""
    header = fh.readline(MAX_HEADER_BYTES + 1)
    if len(header) > MAX_HEADER_BYTES:
        raise InvalidParameterError(
            parameter,
            where,
            f"its first line is longer than {MAX_HEADER_BYTES // (1024 * 1024)} MiB; a data file starts with a "
            "header row of column names. Check the file is what you meant to pass.",
        )
    return header, fh.readline(MAX_HEADER_BYTES + 1)


def _csv_columns(header: bytes, parameter: str, where: str) -> list[str]:
    try:
        return _csv_header(header.decode("utf-8", errors="replace"))
    except csv.Error as err:
        raise InvalidParameterError(parameter, where, f"its header row is not readable CSV ({err}).") from None


def _local_columns_and_rows(path: Path, parameter: str) -> tuple[list[str], bool]:
    """The header of a local file and whether it has at least one data row.

    Every format's check reads a bounded amount, and a file that is not what its name says is an
    :class:`InvalidParameterError` naming the parameter, the file and the fix.
    """
    suffix = _suffix(path.name)
    where = str(path)
    if suffix in (".csv", ".csv.gz"):
        import gzip
        import zlib

        try:
            with gzip.open(path, "rb") if suffix == ".csv.gz" else open(path, "rb") as fh:
                header, row = _first_lines(fh, parameter, where)
        except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
            raise InvalidParameterError(
                parameter, where, f"it is not a readable {suffix} file ({err}); check its format and name."
            ) from None
        return _csv_columns(header, parameter, where), bool(row.strip())
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            meta = pq.ParquetFile(path)
            return list(meta.schema_arrow.names), meta.metadata.num_rows > 0
        except Exception as err:  # pyarrow raises ArrowInvalid, OSError and others for a damaged file
            raise InvalidParameterError(
                parameter,
                where,
                f"it is not a readable Parquet file ({type(err).__name__}); check its format and name.",
            ) from None
    if suffix == ".jsonl":
        return _jsonl_columns(path, parameter)
    raise InvalidParameterError(
        parameter, str(path), f"unsupported file type; use one of {', '.join(SUPPORTED_SUFFIXES)}."
    )


def _jsonl_columns(path: Path, parameter: str) -> tuple[list[str], bool]:
    """The keys of a JSON-lines file's first record (read up to :data:`MAX_HEADER_BYTES`)."""
    import json

    fix = 'a .jsonl file holds one JSON object per line, such as {"age": 41, "plan": "basic"}.'
    with open(path, "rb") as fh:
        first, _ = _first_lines(fh, parameter, str(path))
    try:
        text = first.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise InvalidParameterError(parameter, str(path), f"it is not UTF-8 text (a binary file?); {fix}") from None
    if not text:
        return [], False
    try:
        record = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise InvalidParameterError(parameter, str(path), f"its first line is not JSON ({err}); {fix}") from None
    if not isinstance(record, dict):
        raise InvalidParameterError(
            parameter, str(path), f"its first line is a JSON {type(record).__name__}, not an object; {fix}"
        )
    return [str(key) for key in record], True


def _check_columns(parameter: str, where: str, columns: list[str], required: list[str]) -> None:
    missing = [c for c in required if c not in columns]
    if missing:
        shown = ", ".join(columns[:30]) + (", ..." if len(columns) > 30 else "")
        raise InvalidParameterError(
            parameter,
            where,
            f"column(s) {', '.join(missing)} not found; the data has: {shown or '(no columns)'}.",
        )


def prepare_input(
    data: Any,
    parameter: str,
    *,
    required_columns: list[str] | None = None,
    s3_storage: Storage | None = None,
) -> DataInput:
    """Validate ``data`` and return what to stage.

    :param data: a pandas DataFrame, a local file path or an ``s3://`` URI.
    :param parameter: the argument's name, used in error messages.
    :param required_columns: columns that must be present (e.g. the label).
    :param s3_storage: used to check that an ``s3://`` input exists and to read its header.
    """
    required = required_columns or []
    if data is None:
        raise InvalidParameterError(parameter, None, "pass a DataFrame, a local file path or an s3:// URI.")
    if is_dataframe(data):
        if len(data.index) == 0:
            raise InvalidParameterError(parameter, f"DataFrame{data.shape}", "the DataFrame has no rows.")
        columns = [str(c) for c in data.columns]
        _check_columns(parameter, f"DataFrame{data.shape}", columns, required)
        fd, tmp = tempfile.mkstemp(prefix=f"{parameter}-", suffix=".csv")
        os.close(fd)
        data.to_csv(tmp, index=False)
        return DataInput(parameter, local_path=Path(tmp), columns=columns, temporary=True)
    if isinstance(data, os.PathLike):
        data = os.fspath(data)
    if not isinstance(data, str) or not data.strip():
        raise InvalidParameterError(
            parameter, data, "expected a DataFrame, a local file path or an s3://bucket/key URI."
        )
    if is_s3_uri(data) or data.lower().startswith("s3:"):
        _, key = parse_s3_uri(data, parameter)
        if not key or key.endswith("/"):
            raise InvalidParameterError(parameter, data, "point at one data file (s3://bucket/path/train.csv).")
        if _suffix(key) not in SUPPORTED_SUFFIXES:
            raise InvalidParameterError(
                parameter, data, f"unsupported file type; use one of {', '.join(SUPPORTED_SUFFIXES)}."
            )
        header: list[str] | None = None
        if s3_storage is not None:
            size = s3_storage.size(data)
            if size is None:
                raise InvalidParameterError(parameter, data, "no object exists at that URI.")
            if size == 0:
                raise InvalidParameterError(parameter, data, "the object is empty.")
            if _suffix(key) == ".csv" and required:
                head = _read_s3_head(s3_storage, data)
                header = _csv_columns(head.split("\n", 1)[0].encode(), parameter, data)
                _check_columns(parameter, data, header, required)
        return DataInput(parameter, s3_uri=data, columns=header)
    path = Path(data).expanduser()
    if data.startswith("file://"):
        path = Path(data[len("file://") :])
    if not path.is_file():
        raise InvalidParameterError(
            parameter, data, "no such file; pass an existing file, a DataFrame or an s3:// URI."
        )
    columns, has_rows = _local_columns_and_rows(path, parameter)
    if not has_rows:
        raise InvalidParameterError(parameter, data, "the file has no data rows.")
    _check_columns(parameter, data, columns, required)
    return DataInput(parameter, local_path=path.resolve(), columns=columns)


def _read_s3_head(storage: Storage, uri: str) -> str:
    client = getattr(storage, "client", None)
    if client is None:
        return ""
    bucket, key = parse_s3_uri(uri)
    body = client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{_HEADER_PROBE_BYTES - 1}")["Body"].read()
    return body.decode("utf-8", errors="replace")
