"""The training configuration that travels to the entry script as ``ag_args.json``.

Only JSON crosses the boundary (never pickle): a value that cannot be represented in JSON is
rejected here, before anything is staged, with the argument and key path that hold it.
"""

from __future__ import annotations

import json
import math
from typing import Any

from airflow_autogluon_cloud.exceptions import InvalidParameterError
from airflow_autogluon_cloud.kinds import get_kind

AG_ARGS_VERSION = 1
#: Keys of ``predictor_fit_args`` that are data, passed as their own arguments instead.
_DATA_KEYS = ("train_data", "tuning_data")


def _find_unserialisable(value: Any, path: str) -> str | None:
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else path
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = _find_unserialisable(item, f"{path}[{i}]")
            if found:
                return found
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path}[{key!r}] (keys must be strings)"
            found = _find_unserialisable(item, f"{path}[{key!r}]")
            if found:
                return found
        return None
    return path


def coerce_json_dict(parameter: str, value: Any) -> dict[str, Any]:
    """Return ``value`` as a JSON-safe dict; a JSON string (e.g. a rendered template) is parsed.

    :raises InvalidParameterError: naming ``parameter`` and the exact key that is not JSON.
    """
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise InvalidParameterError(parameter, value, f"a string must be a JSON object ({err}).") from None
    if not isinstance(value, dict):
        raise InvalidParameterError(parameter, value, "expected a dict of AutoGluon arguments.")
    bad = _find_unserialisable(value, parameter)
    if bad:
        raise InvalidParameterError(
            parameter,
            value,
            f"{bad} is not JSON-serialisable. Only JSON values (str, int, float, bool, None, lists and "
            "dicts with string keys) reach the training container; pass objects such as metrics or "
            "search spaces by name (e.g. eval_metric='roc_auc').",
        )
    return dict(value)


def _is_path_argument(key: object) -> bool:
    """Whether an AutoGluon argument names a place on disk (``log_file_path``, ``save_path``, ``cache_dir``)."""
    name = str(key).lower()
    return "path" in name or name.endswith(("_dir", "_directory", "_folder"))


def build_ag_args(
    predictor_type: str,
    predictor_init_args: Any,
    predictor_fit_args: Any,
    *,
    leaderboard: bool = True,
    timeseries_columns: dict[str, str] | None = None,
    named_init_args: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Validate the predictor arguments and return the ``ag_args.json`` document.

    :param named_init_args: init arguments given as the operator's own parameters (a time
        series' ``target``, ``prediction_length``...); merged into ``predictor_init_args``.
    """
    kind = get_kind(predictor_type)
    init_args = coerce_json_dict("predictor_init_args", predictor_init_args)
    init_args = kind.merge_named_init_args(init_args, named_init_args or {})
    fit_args = coerce_json_dict("predictor_fit_args", predictor_fit_args)
    for key in _DATA_KEYS:
        if key in fit_args:
            raise InvalidParameterError(
                f"predictor_fit_args[{key!r}]",
                fit_args[key],
                f"pass the data as the operator's `{key}` argument (a DataFrame, file path or s3:// URI).",
            )
    kind.check_init_args(init_args)
    if "path" in init_args:
        raise InvalidParameterError(
            "predictor_init_args['path']",
            init_args["path"],
            "the model is written to the container's model directory; set cloud_output_path instead.",
        )
    for parameter, args in (("predictor_init_args", init_args), ("predictor_fit_args", fit_args)):
        for key in args:
            if _is_path_argument(key):
                raise InvalidParameterError(
                    f"{parameter}[{key!r}]",
                    args[key],
                    "a job writes only inside its own directory (the model, its logs); drop this argument "
                    "and set cloud_output_path for where the artifacts go.",
                )
    doc: dict[str, Any] = {
        "version": AG_ARGS_VERSION,
        "predictor_type": kind.name,
        "predictor_init_args": init_args,
        "predictor_fit_args": fit_args,
        "leaderboard": leaderboard,
    }
    doc.update(kind.ag_args_extra(timeseries_columns))
    return doc


def dumps_canonical(doc: dict[str, Any]) -> bytes:
    """Deterministic JSON bytes, so identical configurations stage to the same content address."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
