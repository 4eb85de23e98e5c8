"""Creating and safely extracting ``.tar.gz`` artifacts.

Model artifacts can come from anywhere (any ``model.tar.gz`` URI), so extraction trusts nothing:
absolute paths, ``..`` components, symbolic and hard links, and device or FIFO members are
rejected before a single byte is written.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_autogluon_cloud.exceptions import ArtifactError


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
        for child in sorted(source.iterdir()):
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


def safe_extract(archive_path: str | os.PathLike[str], target_dir: str | os.PathLike[str]) -> Path:
    """Extract a ``.tar``/``.tar.gz`` into ``target_dir`` after checking every member.

    :return: the target directory.
    :raises ArtifactError: if any member is unsafe; nothing is extracted in that case.
    """
    target = Path(target_dir).resolve()
    target.mkdir(parents=True, exist_ok=True)
    archive = str(archive_path)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, archive)
                resolved = (target / member.name).resolve()
                if resolved != target and target not in resolved.parents:
                    raise _unsafe(
                        f"Refusing to extract {archive}: member {member.name!r} escapes the target directory."
                    )
            # The members were checked above; the "data" filter is a second, independent guard.
            tar.extractall(target, members=members, filter="data")
    except tarfile.TarError as err:
        raise _unsafe(f"{archive} is not a readable tar archive: {err}") from err
    return target
