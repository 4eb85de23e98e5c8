"""The model summary (``training_summary.json``), typed, read and written here only.

``train.py`` writes the file beside every model (in ``model.tar.gz`` and ``output.tar.gz``); the
host reads it with :meth:`ModelSummary.from_dict`, where each field's default is stated once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from airflow_autogluon_cloud.kinds.base import PredictorKind
from airflow_autogluon_cloud.kinds.registry import DEFAULT_KIND_NAME, get_kind


@dataclass
class ModelSummary:
    """What a fitted model is, as ``training_summary.json`` says.

    Unknown keys are kept in :attr:`extra`, so a newer file round-trips unchanged.
    """

    predictor_type: str = DEFAULT_KIND_NAME
    label: str | None = None
    problem_type: str | None = None
    eval_metric: str | None = None
    best_model: str | None = None
    score_val: float | None = None
    autogluon_version: str | None = None
    features: list[str] = field(default_factory=list)
    class_labels: list[str] | None = None
    model_names: list[str] = field(default_factory=list)
    timeseries: dict[str, Any] | None = None
    predictions: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> ModelSummary:
        raw = dict(raw or {})
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in raw.items() if k in known and v is not None}
        return cls(**values, extra={k: v for k, v in raw.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(out.pop("extra"))
        return out

    @property
    def kind(self) -> PredictorKind:
        return get_kind(self.predictor_type)

    @property
    def known(self) -> bool:
        """Whether a summary was found at all (a model from elsewhere has none)."""
        return bool(self.label or self.problem_type or self.autogluon_version)
