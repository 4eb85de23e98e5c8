"""An AutoGluon version AWS has no image for: a clear error before any resource, under moto."""

from __future__ import annotations

import boto3
import pandas as pd
import pytest

from airflow_autogluon_cloud.exceptions import InvalidParameterError
from airflow_autogluon_cloud.images import known_versions
from tests.sagemaker.conftest import BUCKET, REGION
from tests.sagemaker.test_sagemaker_serving import MODEL_URI, _put_model

pytestmark = pytest.mark.compat

CREATES = ("CreateTrainingJob", "CreateModel", "CreateEndpointConfig", "CreateEndpoint", "CreateTransformJob")
UNPUBLISHED = "1.6.3"


def _objects() -> set[str]:
    listing = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=BUCKET)
    return {o["Key"] for o in listing.get("Contents", [])}


def _assert_names_version_newest_and_recipe(err: pytest.ExceptionInfo, scope: str) -> None:
    newest = known_versions(scope)[-1]
    message = str(err.value)
    assert f"`framework_version`='{UNPUBLISHED}'" in message
    assert f"no AutoGluon {scope} image for {UNPUBLISHED}" in message
    assert f"the newest is {newest}" in message
    assert "docs/custom-images.md" in message
    assert "custom_image_uri" in message


def test_the_sdk_table_really_lacks_the_version():
    # If a later SDK publishes it, pick a newer unpublished version for these tests.
    assert UNPUBLISHED not in known_versions("training")
    assert UNPUBLISHED not in known_versions("inference")


def test_deploying_a_model_trained_with_an_unpublished_version_fails_before_any_resource(hook, record):
    _put_model({"autogluon_version": UNPUBLISHED, "features": ["a", "b"]})
    before = _objects()
    recorder = record(hook.backend.client("sagemaker"), *CREATES)
    with pytest.raises(InvalidParameterError) as err:
        hook.start_deploy(endpoint_name="ag-af-ep-new-ag", model_uri=MODEL_URI, instance_type="ml.c5.xlarge")
    _assert_names_version_newest_and_recipe(err, "inference")
    assert all(calls == [] for calls in recorder.calls.values())
    assert _objects() == before


def test_fitting_with_an_unpublished_version_fails_before_any_resource(hook, record):
    before = _objects()
    recorder = record(hook.backend.client("sagemaker"), *CREATES)
    with pytest.raises(InvalidParameterError) as err:
        hook.start_training(
            job_name="ag-af-fit-new-ag",
            train_data=pd.DataFrame({"x": range(10), "y": [0, 1] * 5}),
            predictor_init_args={"label": "y"},
            framework_version=UNPUBLISHED,
        )
    _assert_names_version_newest_and_recipe(err, "training")
    assert all(calls == [] for calls in recorder.calls.values())
    assert _objects() == before  # nothing staged either


def test_batch_predicting_with_an_unpublished_version_creates_no_sagemaker_resource(hook, record):
    _put_model({"autogluon_version": UNPUBLISHED, "features": ["a", "b"]})
    recorder = record(hook.backend.client("sagemaker"), *CREATES)
    with pytest.raises(InvalidParameterError) as err:
        hook.start_batch_predict(
            job_name="ag-af-bt-new-ag", model_uri=MODEL_URI, test_data=pd.DataFrame({"a": [1], "b": [2]})
        )
    _assert_names_version_newest_and_recipe(err, "inference")
    assert all(calls == [] for calls in recorder.calls.values())


def test_custom_image_uri_is_the_way_through(hook, record):
    _put_model({"autogluon_version": UNPUBLISHED, "features": ["a", "b"]})
    image = f"123456789012.dkr.ecr.{REGION}.amazonaws.com/autogluon-custom:{UNPUBLISHED}-inference-cpu-py311"
    recorder = record(hook.backend.client("sagemaker"), "CreateModel")
    plan = hook.start_deploy(
        endpoint_name="ag-af-ep-custom", model_uri=MODEL_URI, instance_type="ml.c5.xlarge", custom_image_uri=image
    )
    [model] = recorder.calls["CreateModel"]
    assert model["PrimaryContainer"]["Image"] == image
    hook.finish_deploy(plan)


def test_an_old_unknown_version_still_lists_what_there_is(hook):
    with pytest.raises(InvalidParameterError, match=r"images for .*1\.5\.0 \(the newest is 1\.5\.0\).*custom-images"):
        hook.start_training(
            job_name="ag-af-fit-old-ag",
            train_data=pd.DataFrame({"x": range(10), "y": [0, 1] * 5}),
            predictor_init_args={"label": "y"},
            framework_version="0.1",
        )
