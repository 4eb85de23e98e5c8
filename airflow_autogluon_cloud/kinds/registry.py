"""The predictor kinds by name, and the lookup every layer uses."""

from __future__ import annotations

from airflow_autogluon_cloud.exceptions import InvalidParameterError
from airflow_autogluon_cloud.kinds.base import PredictorKind
from airflow_autogluon_cloud.kinds.multimodal import MULTIMODAL
from airflow_autogluon_cloud.kinds.tabular import TABULAR
from airflow_autogluon_cloud.kinds.timeseries import TIMESERIES

#: ``predictor_type`` when none is given (and the kind of a model whose summary does not say).
DEFAULT_KIND_NAME = "tabular"
#: Every predictor kind, by the name users give as ``predictor_type``.
PREDICTOR_KINDS: dict[str, PredictorKind] = {kind.name: kind for kind in (TABULAR, TIMESERIES, MULTIMODAL)}
#: ``predictor_type`` when none is given.
DEFAULT_KIND: PredictorKind = PREDICTOR_KINDS[DEFAULT_KIND_NAME]


def get_kind(name: str | None, parameter: str = "predictor_type") -> PredictorKind:
    """The predictor kind called ``name`` (the default kind for ``None``).

    :raises InvalidParameterError: for an unknown name, listing the valid ones.
    """
    if name is None:
        return DEFAULT_KIND
    kind = PREDICTOR_KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        raise InvalidParameterError(parameter, name, f"choose one of {', '.join(PREDICTOR_KINDS)}.")
    return kind
