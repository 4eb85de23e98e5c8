"""Creating and safely extracting ``.tar.gz`` artifacts.

Model artifacts can come from anywhere (any ``model.tar.gz`` URI), so extraction trusts nothing:
absolute paths, ``..`` components, symbolic and hard links, and device or FIFO members are
rejected, and nothing reaches the target directory unless every member passes. An archive may
unpack to at most ``max_archive_bytes`` (20 GiB) in at most ``max_archive_members`` (100,000)
members, checked before each member is written, so disk use stays within the limit. Raise them
with ``[autogluon_cloud] max_archive_bytes`` / ``max_archive_members`` (or the environment
variables ``AIRFLOW__AUTOGLUON_CLOUD__MAX_ARCHIVE_BYTES`` / ``..._MEMBERS``).
"""

from __future__ import annotations

import os
import shutil
import sys
import tarfile
import uuid
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_autogluon_cloud.exceptions import ArtifactError


#: Big enough for bagged, best-quality AutoGluon models (several GB, tens of thousands of files).
DEFAULT_MAX_ARCHIVE_BYTES = 20 * 1024**3
DEFAULT_MAX_ARCHIVE_MEMBERS = 100_000


def archive_limit(key: str, default: int) -> int:
    """``[autogluon_cloud] <key>``: its environment variable, else Airflow's configuration if this
    process has loaded it (a local job's process does not), else ``default``."""
    raw = os.environ.get(f"AIRFLOW__AUTOGLUON_CLOUD__{key.upper()}")
    if raw is None and "airflow.configuration" in sys.modules:
        from airflow_autogluon_cloud.settings import airflow_conf

        raw = airflow_conf().get("autogluon_cloud", key, fallback=None)
    if raw is None or not str(raw).strip():
        return default
    try:
        value = int(str(raw).strip())
    except ValueError:
        value = 0
    if value < 1:
        from airflow_autogluon_cloud.exceptions import InvalidParameterError

        raise InvalidParameterError(
            f"[autogluon_cloud] {key}", raw, f"expected a whole number, 1 or more (default {default})."
        )
    return value


def _unsafe(message: str) -> ArtifactError:
    # Imported only on failure: the local job runners use this module and would otherwise load
    # Airflow (the exceptions' base class) at start-up, about 1.4 s per process.
    from airflow_autogluon_cloud.exceptions import ArtifactError

    return ArtifactError(message)


def make_tarball(source_dir: str | os.PathLike[str], out_path: str | os.PathLike[str]) -> None:
    """Pack the *contents* of ``source_dir`` (not the directory itself) into ``out_path``.

    The archive is written to a temporary sibling and renamed, so ``out_path`` is never partial.
    """
    source = Path(source_dir)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.partial")
    with tarfile.open(tmp, "w:gz", compresslevel=1) as tar:
        # Files before directories: the small metadata files (training_summary.json) come ahead of
        # models/, so a reader streaming the archive learns what kind of model it holds at once.
        for child in sorted(source.iterdir(), key=lambda path: (path.is_dir(), path.name)):
            tar.add(child, arcname=child.name)
    os.replace(tmp, out)


def _check_member(member: tarfile.TarInfo, archive: str) -> None:
    name = member.name
    path = PurePosixPath(name)
    if name.startswith(("/", "\\")) or path.is_absolute() or (len(name) > 1 and name[1] == ":"):
        raise _unsafe(f"Refusing to extract {archive}: member {name!r} has an absolute path.")
    if ".." in path.parts:
        raise _unsafe(f"Refusing to extract {archive}: member {name!r} escapes the target directory.")
    if member.issym() or member.islnk():
        raise _unsafe(f"Refusing to extract {archive}: member {name!r} is a link.")
    if not (member.isfile() or member.isdir()):
        raise _unsafe(f"Refusing to extract {archive}: member {name!r} is a device, FIFO or special file.")


def safe_extract(
    archive_path: str | os.PathLike[str],
    target_dir: str | os.PathLike[str],
    on_member: Callable[[str, Path], None] | None = None,
    *,
    source: str | None = None,
) -> Path:
    """Extract a ``.tar``/``.tar.gz`` into ``target_dir``, checking every member before it is written.

    One pass over the archive (a compressed one is decompressed once): members are extracted into
    a temporary sibling of ``target_dir`` as they are checked, and moved into ``target_dir`` only
    once all have passed.

    :param on_member: called with each member's name and where it was just written (in the
        temporary directory) as the extraction goes: what is early in the archive can be read
        before the rest is unpacked.
    :param source: what errors call the archive (the URI the user gave; default its path).
    :return: the target directory.
    :raises ArtifactError: if any member is unsafe, or the archive is bigger than the limits;
        nothing reaches ``target_dir`` in that case.
    """
    max_bytes = archive_limit("max_archive_bytes", DEFAULT_MAX_ARCHIVE_BYTES)
    max_members = archive_limit("max_archive_members", DEFAULT_MAX_ARCHIVE_MEMBERS)
    target = Path(target_dir).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    archive = source or str(archive_path)
    # Created with the default mode (mkdtemp's would be owner-only), as the target's would be.
    staging = target.parent / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial"
    staging.mkdir()
    try:
        total = members = 0
        with tarfile.open(archive_path, "r|*") as tar:  # a stream: read once, in order
            for member in tar:
                _check_member(member, archive)
                members += 1
                total += member.size
                if members > max_members or total > max_bytes:
                    raise _unsafe(_too_big(archive, members, max_members, total, max_bytes))
                resolved = (staging / member.name).resolve()
                if resolved != staging and staging not in resolved.parents:
                    raise _unsafe(
                        f"Refusing to extract {archive}: member {member.name!r} escapes the target directory."
                    )
                # The member was checked above; the "data" filter is a second, independent guard.
                tar.extract(member, staging, filter="data")
                if on_member is not None:
                    on_member(member.name, staging / member.name)
        _move_into(staging, target)
    except tarfile.TarError as err:
        raise _unsafe(f"{archive} is not a readable tar archive: {err}") from err
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _too_big(archive: str, members: int, max_members: int, total: int, max_bytes: int) -> str:
    what = (
        f"more than {max_members} members"
        if members > max_members
        else f"more than {max_bytes / 1024**3:.3g} GiB ({max_bytes} bytes) once unpacked"
    )
    setting = "max_archive_members" if members > max_members else "max_archive_bytes"
    return (
        f"Refusing to extract {archive}: it holds {what}. If the model really is that big, raise "
        f"[autogluon_cloud] {setting} (AIRFLOW__AUTOGLUON_CLOUD__{setting.upper()})."
    )


def _move_into(source: Path, target: Path) -> None:
    """Move the contents of ``source`` into ``target``, replacing files of the same name."""
    if not target.exists() or (target.is_dir() and not any(target.iterdir())):
        try:
            os.replace(source, target)  # the whole tree at once (an empty directory can be replaced)
            return
        except OSError:
            if not target.is_dir():  # not another extraction filling it meanwhile: a real failure
                raise
    target.mkdir(exist_ok=True)
    for child in source.iterdir():
        destination = target / child.name
        if child.is_dir() and destination.is_dir():
            _move_into(child, destination)
        else:
            if destination.is_dir():
                shutil.rmtree(destination)
            os.replace(child, destination)
