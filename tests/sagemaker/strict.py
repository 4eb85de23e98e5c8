"""Strict request validation: the constraints of botocore's service model that botocore skips.

botocore's ``ParamValidator`` checks types, required members and ``min``; it never looks at ``max``,
``pattern`` or ``enum``, and moto checks little more. AWS checks all of them, so a job name that
breaks SageMaker's pattern, or an unknown instance type, would pass every test here and fail only
at AWS. :func:`violations` walks an operation's input shape and reports each such breach.

Patterns are anchored: AWS validates the whole value. botocore ships most SageMaker patterns bare
(``TrainingJobName`` is ``[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}``, shown with ``^`` in the API
reference), and a bare pattern found anywhere in a value would accept ``ag_af`` for its ``ag``;
so every pattern must match the whole value. They use ECMA-262 Unicode property classes such as
``\\p{L}``, so they are compiled with the ``regex`` module.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import regex

SERVICES = frozenset({"sagemaker", "sagemaker-runtime", "s3", "sts", "application-autoscaling"})


class StrictValidationError(AssertionError):
    """A request that AWS would reject on ``max``, ``pattern`` or ``enum``."""


# Java/ECMA write characters beyond the BMP as UTF-16 surrogate pairs (\\uD800\\uDC00); Python
# regexes work on code points.
_SURROGATE_PAIR = regex.compile(r"\\u(D[89AB][0-9A-F]{2})\\u(D[C-F][0-9A-F]{2})", regex.IGNORECASE)


def _code_point(match: regex.Match) -> str:
    high, low = int(match.group(1), 16), int(match.group(2), 16)
    return f"\\U{0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00):08X}"


@cache
def _compiled(pattern: str) -> regex.Pattern:
    return regex.compile(_SURROGATE_PAIR.sub(_code_point, pattern), regex.DOTALL)


def violations(shape: Any, value: Any, path: str = "") -> list[str]:
    """Every ``max``/``pattern``/``enum`` breach of ``value`` against botocore ``shape``."""
    if value is None or shape is None:
        return []
    found: list[str] = []
    meta = shape.metadata
    kind = shape.type_name
    where = path or shape.name
    if kind == "structure" and isinstance(value, dict):
        for name, member_value in value.items():
            member = shape.members.get(name)
            found += violations(member, member_value, f"{path}.{name}" if path else name)
    elif kind == "list" and isinstance(value, list | tuple):
        if "max" in meta and len(value) > meta["max"]:
            found.append(f"{where}: {len(value)} items, more than the maximum {meta['max']}")
        for i, item in enumerate(value):
            found += violations(shape.member, item, f"{where}[{i}]")
    elif kind == "map" and isinstance(value, dict):
        if "max" in meta and len(value) > meta["max"]:
            found.append(f"{where}: {len(value)} entries, more than the maximum {meta['max']}")
        for key, item in value.items():
            found += violations(shape.key, key, f"{where} key {key!r}")
            found += violations(shape.value, item, f"{where}[{key!r}]")
    elif kind == "string" and isinstance(value, str):
        if "max" in meta and len(value) > meta["max"]:
            found.append(f"{where}: length {len(value)} is over the maximum {meta['max']} ({value[:60]!r}...)")
        if "pattern" in meta and not _compiled(meta["pattern"]).fullmatch(value):
            found.append(f"{where}: {value!r} does not match the pattern {meta['pattern']!r}")
        if shape.enum and value not in shape.enum:
            found.append(f"{where}: {value!r} is not one of {len(shape.enum)} allowed values ({shape.enum[:5]}...)")
    elif kind in ("integer", "long", "float", "double") and isinstance(value, int | float):
        if "max" in meta and value > meta["max"]:
            found.append(f"{where}: {value} is over the maximum {meta['max']}")
    elif kind == "blob" and isinstance(value, bytes | bytearray | str):
        if "max" in meta and len(value) > meta["max"]:
            found.append(f"{where}: {len(value)} bytes, more than the maximum {meta['max']}")
    return found


def check_request(service_model: Any, operation: str, params: dict[str, Any]) -> None:
    """Raise :class:`StrictValidationError` if ``params`` for ``operation`` break the model."""
    if service_model.service_name not in SERVICES:
        return
    shape = service_model.operation_model(operation).input_shape
    found = violations(shape, params)
    if found:
        raise StrictValidationError(
            f"{service_model.service_name}.{operation} would be rejected by AWS:\n  " + "\n  ".join(found)
        )
