"""Time-series forecasting end to end; needs the timeseries extra (run in .venv-extras)."""

from __future__ import annotations

import importlib.util
import os

import pytest

#: Foundation models fetch weights from the Hugging Face hub: never here. Named models only.
os.environ["HF_HUB_OFFLINE"] = "1"

HAVE_TIMESERIES = importlib.util.find_spec("autogluon") is not None and (
    importlib.util.find_spec("autogluon.timeseries") is not None
)
#: Every module here: ``pytestmark = TIMESERIES``.
TIMESERIES = [
    pytest.mark.timeseries,
    pytest.mark.skipif(
        not HAVE_TIMESERIES,
        reason="autogluon.timeseries is not installed: run in .venv-extras (bash scripts/setup-extras-env.sh)",
    ),
]
#: Models that need no downloads and fit in seconds.
TS_HYPERPARAMETERS = {"Naive": {}, "SeasonalNaive": {}, "ETS": {}, "DirectTabular": {}, "RecursiveTabular": {}}
TS_FIT_ARGS = {"hyperparameters": TS_HYPERPARAMETERS, "time_limit": 600, "verbosity": 1}
HORIZON = 14
QUANTILES = [0.1, 0.5, 0.9]
