"""Prediction options (``predict_kwargs``): the allowed list, their checks, and how they travel.

The same options apply to real-time and batch prediction, so both answer alike:

- ``decision_threshold`` (a number in [0, 1], binary classifiers only): the positive-class
  probability above which a row is predicted positive, instead of the fitted threshold;
- ``model`` (a name from the leaderboard): score with that model instead of the best one;
- ``as_multiclass`` (bool, classifiers only): ``False`` keeps only the positive class's
  ``<class>_proba`` column for a binary model (AutoGluon's ``predict_proba(as_multiclass=False)``).

They reach the serving script (``container/serve.py``, which checks them again) as JSON: per
request in the SageMaker ``CustomAttributes`` header (``X-Amzn-SageMaker-Custom-Attributes``,
at most 1024 characters) as ``ag_predict_kwargs=<json>``; for a batch transform in the job's
environment variable :data:`ENV_VAR`.
"""

from __future__ import annotations

import json
import math
from typing import Any

from airflow_autogluon_cloud.exceptions import InvalidParameterError

#: The transform job's (or model's) environment variable holding the options as JSON.
ENV_VAR = "AG_PREDICT_KWARGS"
#: The key inside SageMaker's CustomAttributes header.
CUSTOM_ATTRIBUTE_KEY = "ag_predict_kwargs"
#: SageMaker's limit on the CustomAttributes header.
MAX_CUSTOM_ATTRIBUTES_CHARS = 1024
ALLOWED = ("decision_threshold", "model", "as_multiclass")


def validate(
    predict_kwargs: Any, summary: dict[str, Any] | None = None, parameter: str = "predict_kwargs"
) -> dict[str, Any]:
    """The options, checked against the allowed list (and the model's training summary if known).

    :param summary: ``training_summary.json`` of the model: its problem type and model names make
        a threshold on a non-binary model, or an unknown model name, fail here.
    :raises InvalidParameterError: naming the option, its value and the fix.
    """
    if predict_kwargs is None:
        return {}
    if isinstance(predict_kwargs, str):  # a rendered template
        try:
            predict_kwargs = json.loads(predict_kwargs) if predict_kwargs.strip() else {}
        except ValueError:
            raise InvalidParameterError(parameter, predict_kwargs, "pass a dict or a JSON object.") from None
    if not isinstance(predict_kwargs, dict):
        raise InvalidParameterError(parameter, predict_kwargs, "pass a dict of prediction options.")
    summary = summary or {}
    problem_type = summary.get("problem_type")
    options: dict[str, Any] = {}
    for key, value in predict_kwargs.items():
        where = f"{parameter}[{key!r}]"
        if key not in ALLOWED:
            raise InvalidParameterError(where, value, f"unknown prediction option; allowed: {', '.join(ALLOWED)}.")
        if key == "decision_threshold":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InvalidParameterError(where, value, "expected a number between 0 and 1.")
            if not 0.0 <= value <= 1.0:
                raise InvalidParameterError(where, value, "the threshold is a probability: between 0 and 1.")
            if problem_type and problem_type != "binary":
                raise InvalidParameterError(
                    where, value, f"a decision threshold applies to binary models only; this one is {problem_type}."
                )
            options[key] = float(value)
        elif key == "model":
            if not isinstance(value, str) or not value:
                raise InvalidParameterError(where, value, "expected a model name from the leaderboard.")
            names = summary.get("model_names")
            if names and value not in names:
                raise InvalidParameterError(where, value, f"no such model; the leaderboard has: {', '.join(names)}.")
            options[key] = value
        else:
            if not isinstance(value, bool):
                raise InvalidParameterError(where, value, "expected true or false.")
            if problem_type and problem_type not in ("binary", "multiclass"):
                raise InvalidParameterError(
                    where, value, f"as_multiclass applies to classifiers only; this one is {problem_type}."
                )
            options[key] = value
    return options


def to_json(options: dict[str, Any]) -> str:
    return json.dumps(options, separators=(",", ":"), sort_keys=True)


def custom_attributes(options: dict[str, Any], parameter: str = "predict_kwargs") -> str | None:
    """The CustomAttributes header value carrying ``options`` (``None`` without options)."""
    if not options:
        return None
    value = f"{CUSTOM_ATTRIBUTE_KEY}={to_json(options)}"
    if len(value) > MAX_CUSTOM_ATTRIBUTES_CHARS or not value.isascii():
        raise InvalidParameterError(
            parameter, options, f"options must fit SageMaker's {MAX_CUSTOM_ATTRIBUTES_CHARS}-character ASCII header."
        )
    return value
