"""Prediction options: the allowed list, checks against a model's summary, the header encoding."""

from __future__ import annotations

import pytest

from airflow_autogluon_cloud import predict_options
from airflow_autogluon_cloud.exceptions import InvalidParameterError

BINARY = {"problem_type": "binary", "model_names": ["LightGBM", "WeightedEnsemble_L2"]}
REGRESSION = {"problem_type": "regression", "model_names": ["LightGBM"]}


def test_valid_options_are_normalised():
    options = predict_options.validate({"decision_threshold": 1, "model": "LightGBM", "as_multiclass": False}, BINARY)
    assert options == {"decision_threshold": 1.0, "model": "LightGBM", "as_multiclass": False}
    assert predict_options.validate('{"decision_threshold": 0.3}') == {"decision_threshold": 0.3}
    assert predict_options.validate(None) == predict_options.validate("") == {}


@pytest.mark.parametrize(
    ("options", "summary", "parameter", "fix"),
    [
        ({"decision_threshold": 0.4}, REGRESSION, "predict_kwargs['decision_threshold']", "binary models only"),
        ({"decision_threshold": float("nan")}, BINARY, "predict_kwargs['decision_threshold']", "between 0 and 1"),
        ({"decision_threshold": True}, BINARY, "predict_kwargs['decision_threshold']", "between 0 and 1"),
        ({"model": "CatBoost"}, BINARY, "predict_kwargs['model']", "LightGBM, WeightedEnsemble_L2"),
        ({"as_multiclass": False}, REGRESSION, "predict_kwargs['as_multiclass']", "classifiers only"),
        ({"as_multiclass": 0}, BINARY, "predict_kwargs['as_multiclass']", "true or false"),
        ({"num_gpus": 1}, BINARY, "predict_kwargs['num_gpus']", "allowed: decision_threshold, model, as_multiclass"),
    ],
)
def test_invalid_options_name_the_option(options, summary, parameter, fix):
    with pytest.raises(InvalidParameterError, match=fix) as err:
        predict_options.validate(options, summary)
    assert err.value.parameter == parameter


def test_custom_attributes_encoding_and_limit():
    assert predict_options.custom_attributes({}) is None
    value = predict_options.custom_attributes({"model": "LightGBM", "decision_threshold": 0.25})
    assert value == 'ag_predict_kwargs={"decision_threshold":0.25,"model":"LightGBM"}'
    with pytest.raises(InvalidParameterError, match="1024"):
        predict_options.custom_attributes({"model": "x" * 1100})
