"""Checks of time-series data before a job is created: columns, types, a regular frequency, enough
history per item, no duplicate timestamps. Each problem is an ``InvalidParameterError`` that names
the parameter and the fix. Imports pandas when called, never at parse time.
"""

from __future__ import annotations

from typing import Any

from airflow_autogluon_cloud.exceptions import InvalidParameterError


def _listed(values: list[Any], limit: int = 5) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def check_series(frame: Any, parameter: str, ag_args: dict[str, Any], *, min_windows: int = 1) -> None:
    """Check a long-format frame (one row per item and timestamp) as ``ag_args.json`` describes it."""
    import pandas as pd

    columns = ag_args.get("timeseries") or {}
    init_args = ag_args.get("predictor_init_args") or {}
    id_column = str(columns.get("id_column", "item_id"))
    timestamp_column = str(columns.get("timestamp_column", "timestamp"))
    target = str(init_args.get("target", "target"))
    length = int(init_args.get("prediction_length", 1))
    freq = init_args.get("freq")
    if len(frame) == 0:
        raise InvalidParameterError(parameter, "(empty)", "the data has no rows.")
    if not pd.api.types.is_numeric_dtype(frame[target]) or pd.api.types.is_bool_dtype(frame[target]):
        raise InvalidParameterError(
            "target", target, f"the target column of {parameter} holds {frame[target].dtype}, not numbers."
        )
    for name in init_args.get("known_covariates_names") or []:
        if frame[name].isna().any():
            raise InvalidParameterError(
                "known_covariates_names", name, f"{parameter} has missing values in this known covariate; fill them."
            )
    try:
        stamps = pd.to_datetime(frame[timestamp_column])
    except (ValueError, TypeError) as err:
        raise InvalidParameterError(
            "timestamp_column", timestamp_column, f"{parameter} has values that are not timestamps ({err})."
        ) from None
    if stamps.isna().any():
        raise InvalidParameterError("timestamp_column", timestamp_column, f"{parameter} has missing timestamps.")
    keys = pd.DataFrame({"item": frame[id_column].to_numpy(), "ts": stamps.to_numpy()})
    duplicated = keys.duplicated()
    if duplicated.any():
        pairs = keys[duplicated].head(5).astype(str).apply(tuple, axis=1).tolist()
        raise InvalidParameterError(
            parameter,
            f"{int(duplicated.sum())} duplicate (item, timestamp) pairs, e.g. {_listed(pairs)}",
            "each item may have one row per timestamp: aggregate or drop the duplicates.",
        )
    keys = keys.sort_values(["item", "ts"], kind="stable")
    freq = freq or _infer_freq(keys)
    try:
        periods = keys["ts"].dt.to_period(freq)
    except (ValueError, TypeError) as err:
        raise InvalidParameterError("freq", freq, f"not a pandas frequency ({err}); e.g. 'D', 'W', 'h'.") from None
    ordinals = pd.Series(periods.map(lambda p: p.ordinal).to_numpy(), index=keys.index)
    steps = ordinals.groupby(keys["item"].to_numpy()).diff().dropna()
    if ((steps != 1).to_numpy()).any():
        bad = keys.loc[steps[steps != 1].index, "item"].unique().tolist()
        raise InvalidParameterError(
            "freq",
            freq,
            f"items {_listed(bad)} of {parameter} are not regular at this frequency (gaps or off-grid timestamps): "
            "fill the gaps (e.g. with NaN targets at the missing timestamps) or set freq to the data's frequency.",
        )
    sizes = keys.groupby("item").size()
    short = sizes[sizes <= length]
    if len(short):
        raise InvalidParameterError(
            parameter,
            f"items {_listed(short.index.tolist())} have {int(short.min())} points",
            f"every item needs more than prediction_length={length} points: drop short items or shorten the horizon.",
        )
    needed = length * (min_windows + 1) + 1
    if int(sizes.max()) < needed:
        raise InvalidParameterError(
            "prediction_length",
            length,
            f"the longest series of {parameter} has {int(sizes.max())} points; validating {min_windows} window(s) "
            f"of {length} needs {needed}. Shorten the horizon or give more history.",
        )


def _infer_freq(keys: Any) -> str:
    import pandas as pd

    # The first items that show a frequency (an item with a gap does not): the others are checked against it.
    for checked, (_, stamps) in enumerate(keys.groupby("item", sort=False)["ts"]):
        if checked >= 100:
            break
        if len(stamps) >= 3:
            freq = pd.infer_freq(pd.DatetimeIndex(stamps))
            if freq:
                return str(freq)
    raise InvalidParameterError(
        "freq", None, "the data's frequency cannot be inferred (irregular timestamps); set freq, e.g. freq='W'."
    )


def check_static_features(static: Any, id_column: str, items: Any) -> None:
    """Static features: one row per item, keyed by the id column, covering every item."""
    if id_column not in static.columns:
        raise InvalidParameterError(
            "static_features", list(static.columns), f"static features need the id column {id_column!r}."
        )
    if static[id_column].duplicated().any():
        raise InvalidParameterError("static_features", id_column, "give one row per item.")
    missing = sorted(set(items) - set(static[id_column]))
    if missing:
        raise InvalidParameterError(
            "static_features", f"no row for items {_listed(missing)}", "give one row for every item of train_data."
        )
