"""serve.py's reader for a few rows of plain CSV, without pandas' CSV reader.

What a real-time client sends is often one to a few rows; pandas' CSV reader costs more to set up
than scoring them. Shipped beside serve.py (see ``ag_kinds.CODE_MODULES``); standard library,
NumPy and pandas only.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pandas as pd

# A few rows of plain CSV (what a real-time client sends) are read without pandas' CSV reader, whose
# set-up costs more than scoring one row. The reader below gives exactly the frame that
# ``align(model, pd.read_csv(...))`` gives, or ``None`` whenever it cannot be sure of that (quotes,
# padded values, ragged rows, numbers pandas would round differently...), and then the request
# takes the general path: same answers, same errors.
FAST_CSV_MAX_LINES = 128
#: pandas' default missing-value strings (``pandas._libs.parsers.STR_NA_VALUES``).
_NA_TOKENS = frozenset(
    ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>")
    + ("N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")
)
_TRUE_TOKENS = frozenset(("True", "TRUE", "true"))
_FALSE_TOKENS = frozenset(("False", "FALSE", "false"))
_INF_TOKENS = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf}
_INF_TOKENS.update({k.replace("inf", "infinity"): v for k, v in _INF_TOKENS.items()})
_INT_RE = re.compile(r"[+-]?[0-9]{1,18}")
_FLOAT_RE = re.compile(r"[+-]?([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?")
_NUMBERISH = re.compile(r"[0-9.eE+-]+")
_NA, _INT, _FLOAT, _BOOL, _STR = range(5)


def _token_kind(token: str) -> int:
    """What pandas' C reader makes of one CSV value; raises ``ValueError`` when unsure."""
    if token in _NA_TOKENS:
        return _NA
    if _INT_RE.fullmatch(token):
        return _INT
    match = _FLOAT_RE.fullmatch(token)
    if match and (match[1] or match[2]):
        # pandas' parser equals float() for at most 15 digits scaled by at most 1e22 (both exact
        # in a double, one correctly rounded operation); beyond that it may differ in the last bit.
        digits = len(match[1]) + len(match[2] or "")
        scale = int(match[3] or 0) - len(match[2] or "")
        if digits <= 15 and -22 <= scale <= 22:
            return _FLOAT
        raise ValueError(token)
    if token in _TRUE_TOKENS or token in _FALSE_TOKENS:
        return _BOOL
    if token.lower() in _INF_TOKENS:
        return _FLOAT
    if token != token.strip() or _NUMBERISH.fullmatch(token):
        raise ValueError(token)  # padded values and number-like oddities: pandas decides
    return _STR


def _fast_column(tokens: list[str]) -> Any:
    """One column as pandas' C reader would type it, or ``ValueError``."""
    import numpy as np

    kinds = {_token_kind(t) for t in tokens}
    if kinds == {_INT}:
        return np.array([int(t) for t in tokens], dtype=np.int64)
    if kinds <= {_INT, _FLOAT, _NA}:
        return np.array(
            [math.nan if t in _NA_TOKENS else _INF_TOKENS.get(t.lower()) or float(t) for t in tokens],
            dtype=np.float64,
        )
    if kinds == {_BOOL}:
        return np.array([t in _TRUE_TOKENS for t in tokens], dtype=bool)
    if _STR not in kinds:
        raise ValueError("booleans mixed with numbers or missing values")
    return np.array([math.nan if t in _NA_TOKENS else t for t in tokens], dtype=object)


def fast_csv_frame(model: Any, body: Any, content_type: str | None) -> pd.DataFrame | None:
    """A small plain CSV body as the aligned frame the general path would give; ``None`` to use that path."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if not model.kind.fast_csv or not model.features or media not in ("text/csv", ""):
        return None
    if isinstance(body, (bytes, bytearray, memoryview)):
        try:
            text = bytes(body).decode("utf-8-sig")
        except UnicodeDecodeError:
            return None
    elif isinstance(body, str):
        text = body
    else:
        return None
    if '"' in text or text.count("\n") > FAST_CSV_MAX_LINES:
        return None
    rows = []
    for line in text.split("\n"):
        if line.endswith("\r"):
            line = line[:-1]
        if "\r" in line:
            return None
        if line:
            rows.append(line.split(","))
    if not rows:
        return None
    first = [value.strip() for value in rows[0]]
    if any(value in model.feature_set for value in first):  # a header line, as _parse_csv decides
        if len(set(first)) != len(first):
            return None
        positions = {name: i for i, name in enumerate(first)}
        if any(f not in positions for f in model.features):
            return None  # the general path names the missing columns
        width, rows = len(first), rows[1:]
        where = [positions[f] for f in model.features]
    else:
        width, where = len(model.features), list(range(len(model.features)))
    if not rows or any(len(row) != width for row in rows):
        return None
    try:
        columns = {f: _fast_column([row[i] for row in rows]) for f, i in zip(model.features, where, strict=True)}
    except ValueError:
        return None
    return pd.DataFrame(columns, copy=False)  # fresh arrays: nothing to copy
