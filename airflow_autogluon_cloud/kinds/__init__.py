"""Kinds, host side: the job kinds (training, transform, evaluation) and the predictor kinds.

The predictor kind is one axis of the design: everything that differs between a tabular, a
time-series and a multimodal predictor is stated in that kind's module (``tabular.py``,
``timeseries.py``, ``multimodal.py``), and everything above asks the kind object returned by
:func:`get_kind` rather than comparing names. The container scripts hold the container side of
the same rules in ``container/ag_kinds.py``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from airflow_autogluon_cloud.kinds.jobs import ENDPOINT, JobKind

if TYPE_CHECKING:
    from airflow_autogluon_cloud.kinds.base import ROWS, SERIES, PredictorKind, TransformShape
    from airflow_autogluon_cloud.kinds.registry import DEFAULT_KIND, PREDICTOR_KINDS, get_kind
    from airflow_autogluon_cloud.kinds.summary import ModelSummary

#: The predictor kinds load on first use: the local job runners import ``JobKind`` from here and
#: must start without Airflow, which the kinds' errors (``InvalidParameterError``) import.
_LAZY = {
    "ROWS": "base",
    "SERIES": "base",
    "PredictorKind": "base",
    "TransformShape": "base",
    "DEFAULT_KIND": "registry",
    "PREDICTOR_KINDS": "registry",
    "get_kind": "registry",
    "ModelSummary": "summary",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "DEFAULT_KIND",
    "ENDPOINT",
    "PREDICTOR_KINDS",
    "ROWS",
    "SERIES",
    "JobKind",
    "ModelSummary",
    "PredictorKind",
    "TransformShape",
    "get_kind",
]
