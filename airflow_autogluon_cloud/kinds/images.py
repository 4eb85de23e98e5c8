"""Image columns of multimodal data, host side: checks before any job, packing for staging, and
encoding for real-time requests.

AutoGluon Cloud zips the image column's common parent folder into a ``train_images`` /
``tune_images`` channel and rewrites the column to paths relative to it; the job re-bases them on
the unpacked channel (``container/kind_multimodal.py``). Here only the referenced images are packed,
in a deterministic archive (sorted members, fixed timestamps), so the same images give the same
bytes and content-addressed staging uploads them once.
"""

from __future__ import annotations

import base64
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

from airflow_autogluon_cloud.exceptions import InvalidParameterError

#: ``column_types`` values AutoGluon reads as image file paths.
IMAGE_TYPES = ("image_path",)
#: The content type of a frame whose image columns carry base85 image bytes (parquet in JSON).
PARQUET_ENVELOPE = "application/x-autogluon-parquet"
#: The content type of one raw image.
RAW_IMAGE = "application/x-image"
_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


#: Bytes :func:`looks_like_image` needs from the start of a file.
HEAD_BYTES = 12


def looks_like_image(head: bytes) -> bool:
    """Whether a file's first bytes are those of a PNG, JPEG, GIF, BMP, TIFF or WebP image."""
    return head.startswith(_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def is_image_file(path: Path) -> bool:
    """Whether ``path`` is a readable file that starts like a PNG, JPEG, GIF, BMP, TIFF or WebP image."""
    try:
        with path.open("rb") as handle:
            head = handle.read(HEAD_BYTES)
    except OSError:
        return False
    return looks_like_image(head)


def is_folder(data: Any) -> bool:
    """Whether batch input names a folder: an existing local directory, or an ``s3://`` URI ending in ``/``."""
    if isinstance(data, str) and data.startswith("s3://"):
        return data.endswith("/")
    return isinstance(data, (str, os.PathLike)) and Path(data).expanduser().is_dir()


def image_paths(frame: Any, columns: list[str], parameter: str) -> dict[str, Path]:
    """Every image path the columns name, resolved; each must be a readable image.

    :raises InvalidParameterError: for a value that is not a path, a missing file or not an image.
    """
    found: dict[str, Path] = {}
    for column in columns:
        for value in frame[column].dropna().unique():
            if not isinstance(value, str) or not value:
                raise InvalidParameterError(
                    parameter, f"{column}={value!r}", f"column {column!r} is an image column: give file paths."
                )
            path = Path(value).expanduser()
            if not path.is_file():
                raise InvalidParameterError(
                    parameter, f"{column}={value!r}", "no such image file: give paths to existing files."
                )
            if not is_image_file(path):
                raise InvalidParameterError(
                    parameter,
                    f"{column}={value!r}",
                    "not a readable image (PNG, JPEG, GIF, BMP, TIFF or WebP).",
                )
            found[value] = path.resolve()
    return found


def common_folder(paths: dict[str, Path], parameter: str) -> Path:
    """The folder every image lives under (AutoGluon Cloud's rule: one folder is zipped)."""
    folder = Path(os.path.commonpath([str(p.parent) for p in paths.values()]))
    if folder == Path(folder.anchor):
        shown = sorted({str(p.parent) for p in paths.values()})[:3]
        raise InvalidParameterError(
            parameter, shown, "the images share no folder below the file system's root: put them under one folder."
        )
    return folder


def pack_images(frame: Any, columns: list[str], parameter: str, archive: Path) -> Any:
    """Check the images, write them to ``archive`` (a zip of the referenced files under their common
    folder) and return the frame with the columns rewritten to paths relative to that folder."""
    paths = image_paths(frame, columns, parameter)
    if not paths:
        raise InvalidParameterError(parameter, columns, "the image columns hold no paths.")
    folder = common_folder(paths, parameter)
    relative = {value: path.relative_to(folder).as_posix() for value, path in paths.items()}
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zipped:
        for value in sorted(relative, key=relative.__getitem__):
            if relative[value] in zipped.NameToInfo:
                continue  # two spellings of one file
            info = zipfile.ZipInfo(relative[value], date_time=_FIXED_TIME)
            info.external_attr = 0o644 << 16
            zipped.writestr(info, paths[value].read_bytes())
    rewritten = frame.copy()
    for column in columns:
        rewritten[column] = rewritten[column].map(lambda v: relative.get(v, v) if isinstance(v, str) else v)
    return rewritten


def encode_envelope(frame: Any, columns: list[str]) -> bytes:
    """A frame as ``application/x-autogluon-parquet``: JSON holding base64 Parquet, where each image
    column's cells are the image files' bytes in base85 (read here from the paths)."""
    encoded = frame.copy()
    for column in columns:
        paths = image_paths(frame, [column], "data")
        encoded[column] = [
            base64.b85encode(paths[v].read_bytes()).decode("ascii") if isinstance(v, str) else v for v in frame[column]
        ]
    buffer = io.BytesIO()
    encoded.to_parquet(buffer, index=False)
    body = {"version": 1, "data": base64.b64encode(buffer.getvalue()).decode("ascii"), "image_columns": columns}
    return json.dumps(body).encode()


def image_columns_of(frame: Any) -> list[str]:
    """Columns whose every value is a path to an existing image file (what a request must encode)."""
    columns = []
    for column in frame.columns:
        if frame[column].dtype != object:
            continue
        values = frame[column].dropna()
        # Stops at the first value that is not an image file: one check for an ordinary column.
        if len(values) and all(isinstance(v, str) and is_image_file(Path(v).expanduser()) for v in values):
            columns.append(str(column))
    return columns
