"""Deterministic, SageMaker-valid resource names.

A name is derived from the task instance's try-independent identity (dag, task, run, map index),
so a retried task computes the same name as the try that died and finds the job it started
instead of launching a second one. Every generated name starts with :data:`NAME_PREFIX`, which
is also what the generated IAM policy scopes SageMaker permissions to.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

#: Prefix of every resource this provider names itself (jobs, models, configs, endpoints).
NAME_PREFIX = "ag-af-"
#: SageMaker's limit for job, model, endpoint-config and endpoint names.
MAX_NAME_LENGTH = 63
#: Used with ``fullmatch``: ``^...$`` with ``match`` would accept a name ending in a newline.
_VALID_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*")
_INVALID_CHARS = re.compile(r"[^a-zA-Z0-9]+")
_HASH_LEN = 10


def slugify(text: str) -> str:
    """Lower-case ``text`` and collapse every run of invalid characters into one hyphen."""
    return _INVALID_CHARS.sub("-", text).strip("-").lower()


def is_valid_name(name: str) -> bool:
    """Return whether ``name`` is accepted by SageMaker as a job, model or endpoint name."""
    return 0 < len(name) <= MAX_NAME_LENGTH and bool(_VALID_NAME.fullmatch(name))


def short_hash(*parts: object, length: int = _HASH_LEN) -> str:
    """Hex digest of the parts, stable across processes and Python versions."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return digest[:length]


def deterministic_name(kind: str, dag_id: str, task_id: str, run_id: str, map_index: int = -1) -> str:
    """Name for a resource of ``kind`` ("fit", "bt", "ep", ...) started by one task instance.

    The readable middle part (dag and task) is truncated to fit; uniqueness comes from the hash of
    the full identity, so two task instances never share a name.
    """
    digest = short_hash(kind, dag_id, task_id, run_id, map_index)
    head = f"{NAME_PREFIX}{slugify(kind)}-"
    tail = f"-{digest}"
    room = MAX_NAME_LENGTH - len(head) - len(tail) - 3  # keep room for a "-rN" generation suffix
    middle = slugify(f"{dag_id}-{task_id}")[:room].strip("-") or "task"
    return f"{head}{middle}{tail}"


def name_from_context(kind: str, context: Any) -> str:
    """:func:`deterministic_name` for the task instance in an Airflow ``context``."""
    ti = context["ti"]
    return deterministic_name(kind, ti.dag_id, ti.task_id, ti.run_id, getattr(ti, "map_index", -1))


def generation_name(base: str, generation: int) -> str:
    """The name of the ``generation``-th fresh attempt after earlier jobs under ``base`` failed."""
    if generation == 0:
        return base
    suffix = f"-r{generation}"
    return base[: MAX_NAME_LENGTH - len(suffix)].rstrip("-") + suffix


def derived_name(base: str, suffix: str) -> str:
    """A related resource name (``base`` plus ``-suffix``) that stays within the length limit.

    If ``base`` is too long, it is shortened and a hash of the full base keeps the result unique.
    """
    candidate = f"{base}-{suffix}"
    if len(candidate) <= MAX_NAME_LENGTH:
        return candidate
    digest = short_hash(base, length=8)
    room = MAX_NAME_LENGTH - len(suffix) - len(digest) - 2
    return f"{base[:room].rstrip('-')}-{digest}-{suffix}"
