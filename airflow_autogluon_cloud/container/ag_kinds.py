"""Predictor kinds, container side: what differs between tabular, time-series and multimodal
predictors when a model is fitted, summarised, loaded, served and evaluated.

One copy, shipped next to ``train.py``, ``serve.py`` and ``evaluate.py`` (in ``sourcedir.tar.gz``
and in every model's ``code/``) and imported by all three; the host side states the same rules in
``airflow_autogluon_cloud/kinds/``. Each kind lives in its own module (``kind_tabular.py``,
``kind_timeseries.py``, ``kind_multimodal.py``), loaded when first asked for. Self-contained:
imports only the standard library here; pandas and AutoGluon where a kind needs them.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from http import HTTPStatus
from pathlib import Path
from typing import Any

try:  # In the AWS inference container the toolkit answers this error type with its status code.
    from sagemaker_inference.errors import BaseInferenceToolkitError as _ErrorBase
except ImportError:  # outside the container
    _ErrorBase = Exception

#: The kind of a model whose summary does not say (models from before kinds were recorded).
DEFAULT_KIND = "tabular"
#: AutoGluon's package and predictor class per kind: the one table on this side.
PREDICTORS = {
    "tabular": ("autogluon.tabular", "TabularPredictor"),
    "timeseries": ("autogluon.timeseries", "TimeSeriesPredictor"),
    "multimodal": ("autogluon.multimodal", "MultiModalPredictor"),
}
NAMES = tuple(PREDICTORS)
_MODULES = {"tabular": "kind_tabular", "timeseries": "kind_timeseries", "multimodal": "kind_multimodal"}
#: The modules that must sit next to the entry scripts wherever they are shipped (this one included).
CODE_MODULES = (
    "ag_kinds.py",
    "kind_tabular.py",
    "kind_timeseries.py",
    "kind_multimodal.py",
    "fast_csv.py",
    "data_profile.py",
    "data_checks.py",
)

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # the kind modules sit beside this one, however it was loaded
    sys.path.append(_HERE)


class InputError(Exception):
    """Bad data or configuration for a kind: reported as the job's reason, without a long story."""


class BadRequestError(_ErrorBase):
    """A request the model cannot answer; ``status_code`` is 400, 406 or 415."""

    def __init__(self, status_code: int, message: str, phrase: str | None = None) -> None:
        if phrase is None:
            try:
                phrase = HTTPStatus(status_code).phrase
            except ValueError:
                phrase = "Bad Request"
        # (status_code, message, phrase) is the toolkit's signature; these args also make the error
        # picklable (batch transform workers send it back to their parent process).
        super().__init__(status_code, message, phrase)
        self.status_code = status_code
        self.message = message
        self.phrase = phrase

    def __str__(self) -> str:
        return self.message


def package_of(name: str | None) -> str | None:
    """The AutoGluon package of kind ``name`` (``None`` for an unknown kind)."""
    entry = PREDICTORS.get(str(name or DEFAULT_KIND))
    return entry[0] if entry else None


def get(name: str | None) -> Any:
    """The kind object called ``name`` (the default kind for ``None``); :class:`InputError` if unknown."""
    name = str(name or DEFAULT_KIND)
    if name not in _MODULES:
        raise InputError(f"unknown predictor_type {name!r}; expected one of: {', '.join(NAMES)}")
    return importlib.import_module(_MODULES[name]).KIND


def attr(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name, None)
    except Exception:  # some predictor properties raise when they do not apply
        return None


def load_with(predictor_cls: Any, model_dir: str) -> Any:
    """``predictor_cls.load``, tolerating a Python minor version change where the class allows it."""
    import inspect

    try:
        accepts = "require_py_version_match" in inspect.signature(predictor_cls.load).parameters
    except (TypeError, ValueError):
        accepts = False
    if accepts:
        return predictor_cls.load(model_dir, require_py_version_match=False)
    return predictor_cls.load(model_dir)


def read_summary(model_dir: str | Path) -> dict[str, Any]:
    path = Path(model_dir) / "training_summary.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


class Kind:
    """What every kind shares; the kind modules override what differs."""

    name = ""
    label_key = "label"
    label_default: str | None = None
    #: The summary carries a leaderboard (and the models a request may choose from).
    leaderboard = True
    #: Small CSV bodies may be read without pandas (see fast_csv.py).
    fast_csv = False
    #: Concurrent requests may be scored in one call on their concatenated rows.
    combinable = False
    #: Prediction options a request may give.
    predict_options: tuple[str, ...] = ()
    #: A batch job profiles its rows and answers against the model's baseline (data_profile.py).
    profiles_rows = False
    #: Evaluation keeps per-row evidence and compares models pairwise (paired_stats.py).
    paired_statistics = False
    #: ``predict_data`` in a training job is one request (whole series), not mini-batches of rows.
    whole_predict_data = False

    @property
    def package(self) -> str:
        return PREDICTORS[self.name][0]

    def import_predictor(self) -> Any:
        module, cls = PREDICTORS[self.name]
        try:
            return getattr(importlib.import_module(module), cls)
        except ImportError as err:
            raise InputError(
                f"a {self.name} predictor needs the {module} package, which is not installed in this "
                f"environment ({err}); use an AutoGluon container that includes it"
            ) from None

    # training ---------------------------------------------------------------------------------

    def label(self, args: dict[str, Any]) -> str | None:
        value = (args.get("predictor_init_args") or {}).get(self.label_key, self.label_default)
        return str(value) if value is not None else None

    def check_args(self, args: dict[str, Any]) -> None:
        if self.label(args) is None or not str(self.label(args)):
            raise InputError(f"predictor_init_args.{self.label_key} is required for a {self.name} predictor")

    def required_columns(self, args: dict[str, Any]) -> list[tuple[str, str]]:
        label = self.label(args)
        return [("label", label)] if label else []

    def training_data(self, frame: Any, args: dict[str, Any], static: Any = None, channel: str = "train_data") -> Any:
        """The frame as the predictor's ``fit`` takes it (``channel``: ``train_data`` or ``tuning_data``)."""
        return frame

    def check_fit(self, args: dict[str, Any], log: Any) -> None:
        """Refuse (or warn about) a fit that cannot work where it runs (default: nothing to check)."""

    def after_fit(self, predictor: Any, model_dir: Path, log: Any) -> None:
        """Anything a fitted predictor needs before it is packed (default: nothing)."""

    def summary_fields(self, predictor: Any, args: dict[str, Any]) -> dict[str, Any]:
        return {"features": [], "class_labels": None}

    def baseline_frames(self, predictor: Any, train: Any, tuning: Any) -> tuple[Any, Any, tuple[str, ...]] | None:
        """What the model's baseline profiles (data_profile.py): ``(features, answers, categorical
        answer columns)``; ``None``: this kind's requests are not rows, nothing is profiled."""
        return None

    # serving ----------------------------------------------------------------------------------

    def load(self, model_dir: str) -> Any:
        return load_with(self.import_predictor(), model_dir)

    def serving_state(self, model: Any) -> None:
        """Set what each request needs on ``model`` (features, classes...), once at load."""
        model.features = [str(f) for f in (model.summary.get("features") or [])]
        model.can_predict_proba = False

    def model_names(self, predictor: Any) -> list[str] | None:
        return None

    def scoring_model(self, model: Any) -> str | None:
        return None

    def profiled_answers(self, model: Any, answers: Any) -> tuple[Any, tuple[str, ...]]:
        """A batch request's answers as profiled, and which of their columns are categories."""
        return answers, ()

    def read_request(self, model: Any, body: Any, content_type: str | None, general: Any) -> Any:
        """The request's input; ``general(model, body, content_type)`` is serve.py's row reader."""
        return general(model, body, content_type)

    def rows(self, request: Any) -> int:
        return len(request)

    def predict(self, model: Any, request: Any, options: dict[str, Any]) -> Any:
        raise NotImplementedError

    # evaluation -------------------------------------------------------------------------------

    def evaluation_rows(self, frame: Any, label: str) -> Any:
        """The rows that can be scored: those with a label."""
        return frame[frame[label].notna()]

    def check_evaluated(self, key: str, predictor: Any, args: dict[str, Any]) -> None:
        raise InputError(f"{self.name} predictors cannot be evaluated (model {key!r})")

    def directions(self, problem_type: str, metrics: list[str]) -> dict[str, bool]:
        """Whether each metric improves upwards."""
        raise InputError(f"{self.name} predictors cannot be evaluated")

    def evaluate(
        self, predictor: Any, frame: Any, args: dict[str, Any], metrics: list[str], evidence: Any = None
    ) -> dict[str, Any]:
        """Each metric's value on ``frame``, in the metric's own units (``evidence``: per-row, if kept)."""
        raise InputError(f"{self.name} predictors cannot be evaluated")

    def best_model(self, predictor: Any) -> str:
        return str(attr(predictor, "model_best"))


def env_json(name: str) -> Any:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError as err:
        raise BadRequestError(400, f"{name} is not valid JSON: {err}") from None
