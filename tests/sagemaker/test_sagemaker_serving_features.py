"""SageMaker backend, serving features (issue 14): exact requests under moto, error paths with
botocore Stubber. moto is not AWS; these tests check what this provider sends and how it reads
the answers botocore's service model allows."""

from __future__ import annotations

import io

import boto3
import pandas as pd
import pytest
from botocore.exceptions import ClientError
from botocore.response import StreamingBody
from botocore.stub import Stubber

from airflow_autogluon_cloud.backends.sagemaker import SageMakerBackend
from airflow_autogluon_cloud.backends.sagemaker.console import log_stream_url
from airflow_autogluon_cloud.exceptions import EndpointInvocationError, InvalidParameterError
from tests.sagemaker.conftest import REGION

pytestmark = pytest.mark.compat

LOG_STREAM_ARN = (
    "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/ag-af-ep:log-stream:AllTraffic/i-0abc"
)


def _runtime_backend():
    client = boto3.client("sagemaker-runtime", region_name=REGION)
    return client, SageMakerBackend(lambda svc: client, region_name=REGION, sleep=lambda s: None)


def test_model_error_carries_original_message_and_log_link(aws):
    client, backend = _runtime_backend()
    with Stubber(client) as stub:
        stub.add_client_error(
            "invoke_endpoint",
            "ModelError",
            'Received client error (400) from primary with message "missing columns: plan"',
            424,
            modeled_fields={
                "OriginalStatusCode": 400,
                "OriginalMessage": "missing columns: plan",
                "LogStreamArn": LOG_STREAM_ARN,
            },
        )
        with pytest.raises(EndpointInvocationError) as err:
            backend.invoke_endpoint("ag-af-ep", b"a,b\n1,2\n", "text/csv", "application/json")
    error = err.value
    assert (error.endpoint_name, error.http_status) == ("ag-af-ep", 400)
    assert error.original_message == "missing columns: plan"
    assert error.log_url == (
        "https://console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:log-groups/log-group/"
        "$252Faws$252Fsagemaker$252FEndpoints$252Fag-af-ep/log-events/AllTraffic$252Fi-0abc"
    )
    assert "answered 400: missing columns: plan" in str(error)
    assert error.log_url in str(error)


def test_runtime_errors_other_than_model_error_are_typed_with_their_status(aws):
    client, backend = _runtime_backend()
    with Stubber(client) as stub:
        stub.add_client_error("invoke_endpoint", "InternalDependencyException", "the model store is down", 530)
        with pytest.raises(EndpointInvocationError) as err:
            backend.invoke_endpoint("ag-af-ep", b"a\n1\n", "text/csv", "application/json")
    assert err.value.http_status == 530
    assert not err.value.is_client_error
    assert "InternalDependencyException: the model store is down" in str(err.value)


def test_log_stream_url_without_stream_or_arn():
    assert log_stream_url(None) is None
    assert log_stream_url("") is None
    group_only = "arn:aws:logs:eu-west-1:1:log-group:/aws/sagemaker/Endpoints/x"
    assert log_stream_url(group_only).endswith(
        "region=eu-west-1#logsV2:log-groups/log-group/$252Faws$252Fsagemaker$252FEndpoints$252Fx"
    )


def test_options_travel_in_custom_attributes(aws):
    from airflow_autogluon_cloud.services.realtime import RealtimeService

    client, backend = _runtime_backend()
    with Stubber(client) as stub:
        stub.add_response(
            "invoke_endpoint",
            {"Body": StreamingBody(io.BytesIO(b"[]"), 2), "ContentType": "application/json"},
            {
                "EndpointName": "ag-af-ep",
                "Body": b"a\n1\n",
                "ContentType": "text/csv",
                "Accept": "application/json",
                "CustomAttributes": 'ag_predict_kwargs={"decision_threshold":0.3}',
            },
        )
        answer = RealtimeService(backend).invoke("ag-af-ep", b"a\n1\n", predict_kwargs={"decision_threshold": 0.3})
        stub.assert_no_pending_responses()
    assert answer == b"[]"


def test_transform_job_environment_carries_checked_options(hook, record):
    from tests.sagemaker.test_sagemaker_serving import MODEL_URI, _put_model

    _put_model({"autogluon_version": "1.5.0", "features": ["a"], "problem_type": "binary", "model_names": ["LightGBM"]})
    recorder = record(hook.backend.client("sagemaker"), "CreateTransformJob")
    frame = pd.DataFrame({"a": [1, 2]})
    hook.start_batch_predict(
        job_name="ag-af-bt-options",
        model_uri=MODEL_URI,
        test_data=frame,
        predict_kwargs={"decision_threshold": 0.7, "model": "LightGBM"},
    )
    [request] = recorder.calls["CreateTransformJob"]
    assert request["Environment"] == {
        "AG_PREDICT_KWARGS": '{"decision_threshold":0.7,"model":"LightGBM"}',
        # the batch's data checks (on by default): where the serving script writes each request's profile
        "AG_DATA_PROFILE_URI": "s3://agc-test-bucket/agc/batch_transform/ag-af-bt-options/data_profile",
    }
    with pytest.raises(InvalidParameterError, match="the leaderboard has: LightGBM"):
        hook.start_batch_predict(
            job_name="ag-af-bt-options-bad", model_uri=MODEL_URI, test_data=frame, predict_kwargs={"model": "XGB"}
        )
    assert len(recorder.calls["CreateTransformJob"]) == 1


def test_serverless_endpoint_config_is_exact(hook, record):
    from tests.sagemaker.test_sagemaker_serving import MODEL_URI, _put_model

    _put_model({"autogluon_version": "1.5.0", "features": ["a"]})
    recorder = record(hook.backend.client("sagemaker"), "CreateModel", "CreateEndpointConfig", "CreateEndpoint")
    serverless = {"memory_size_in_mb": 3072, "max_concurrency": 20, "idle_seconds": 60}
    plan = hook.start_deploy(endpoint_name="ag-af-ep-serverless", model_uri=MODEL_URI, serverless_config=serverless)
    [config] = recorder.calls["CreateEndpointConfig"]
    assert config["ProductionVariants"] == [
        {
            "VariantName": "AllTraffic",
            "ModelName": plan["model_name"],
            "ServerlessConfig": {"MemorySizeInMB": 3072, "MaxConcurrency": 20},  # idle_seconds is local only
        }
    ]
    assert recorder.calls["CreateModel"][0]["PrimaryContainer"]["Image"].endswith("-cpu-py311")
    hook.finish_deploy(plan)
    # a retry reattaches to what the first try created
    assert (
        hook.start_deploy(endpoint_name="ag-af-ep-serverless", model_uri=MODEL_URI, serverless_config=serverless)[
            "action"
        ]
        == "reattach"
    )
    described = hook.backend.client("sagemaker").describe_endpoint_config(EndpointConfigName=plan["config_name"])
    assert described["ProductionVariants"][0]["ServerlessConfig"] == {"MemorySizeInMB": 3072, "MaxConcurrency": 20}


# ---- autoscaling ------------------------------------------------------------------------------

POLICY = {"min_capacity": 2, "max_capacity": 4, "target_invocations_per_instance": 100, "scale_in_cooldown": 600}
TARGET = {
    "ServiceNamespace": "sagemaker",
    "ResourceId": "endpoint/ag-af-ep-scaled/variant/AllTraffic",
    "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
}


def _order(*clients):
    """The operations the clients send, in order (after botocore validated their parameters)."""
    calls: list[str] = []
    for client in clients:
        client.meta.events.register(
            f"provide-client-params.{client.meta.service_model.service_name}.*",
            lambda params, model, **kw: calls.append(model.name),
        )
    return calls


def test_autoscaling_requests_are_exact_and_deregistered_before_delete(hook, record):
    from tests.sagemaker.test_sagemaker_serving import MODEL_URI, _put_model

    _put_model({"autogluon_version": "1.5.0", "features": ["a"]})
    sagemaker, scaling = hook.backend.client("sagemaker"), hook.backend.client("application-autoscaling")
    recorder = record(scaling, "RegisterScalableTarget", "PutScalingPolicy")
    configs = record(sagemaker, "CreateEndpointConfig")
    plan = hook.start_deploy(endpoint_name="ag-af-ep-scaled", model_uri=MODEL_URI, autoscaling=POLICY)
    assert configs.calls["CreateEndpointConfig"][0]["ProductionVariants"][0]["InitialInstanceCount"] == 2
    assert recorder.calls["RegisterScalableTarget"] == []  # only once the endpoint is in service
    hook.finish_deploy(plan)
    assert recorder.calls["RegisterScalableTarget"] == [{**TARGET, "MinCapacity": 2, "MaxCapacity": 4}]
    assert recorder.calls["PutScalingPolicy"] == [
        {
            "PolicyName": "ag-af-ep-scaled-invocations-per-instance",
            **TARGET,
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": 100.0,
                "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
                "ScaleInCooldown": 600,
                "ScaleOutCooldown": 300,
            },
        }
    ]
    assert hook.backend.describe_autoscaling("ag-af-ep-scaled") == {
        "min_capacity": 2,
        "max_capacity": 4,
        "target_invocations_per_instance": 100.0,
        "scale_in_cooldown": 600,
        "scale_out_cooldown": 300,
    }
    calls = _order(sagemaker, scaling)
    hook.delete_endpoint("ag-af-ep-scaled")
    assert calls.index("DeregisterScalableTarget") < calls.index("DeleteEndpoint")
    assert calls.index("DeleteScalingPolicy") < calls.index("DeregisterScalableTarget")
    assert scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    hook.delete_endpoint("ag-af-ep-scaled")  # idempotent: nothing left to deregister


def test_sweep_deregisters_autoscaling_too(hook):
    from tests.sagemaker.test_sagemaker_serving import MODEL_URI, _put_model

    _put_model({"autogluon_version": "1.5.0"})
    hook.finish_deploy(hook.start_deploy(endpoint_name="ag-af-ep-scaled", model_uri=MODEL_URI, autoscaling=POLICY))
    scaling = hook.backend.client("application-autoscaling")
    assert len(scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]) == 1
    [entry] = hook.sweep_endpoints(keep=[], dry_run=False)
    assert entry["deleted"]
    assert scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []


def test_update_removes_then_restores_autoscaling(hook):
    """moto has no UpdateEndpoint: SageMaker under a Stubber, Application Auto Scaling on moto."""
    import datetime

    from botocore.stub import ANY

    from tests.sagemaker.test_sagemaker_serving import MODEL_URI, _endpoint, _put_model, _queue_new_model_and_config

    _put_model({"autogluon_version": "1.5.0"})
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    scaling = boto3.client("application-autoscaling", region_name=REGION)
    backend = SageMakerBackend(
        lambda svc: sagemaker if svc == "sagemaker" else scaling if svc == "application-autoscaling" else None,
        region_name=REGION,
        sleep=lambda s: None,
    )
    hook.__dict__["backend"] = backend
    backend.put_autoscaling("ag-af-ep", {**POLICY, "scale_out_cooldown": 60})  # what the endpoint has today
    calls = _order(sagemaker, scaling)
    with Stubber(sagemaker) as stub:
        _queue_new_model_and_config(stub)
        stub.add_response("describe_endpoint", _endpoint("InService", "ag-af-ep-c-old"), {"EndpointName": "ag-af-ep"})
        stub.add_response(
            "update_endpoint",
            {"EndpointArn": "arn:aws:sagemaker:us-east-1:1:endpoint/ag-af-ep"},
            {"EndpointName": "ag-af-ep", "EndpointConfigName": ANY},
        )
        plan = hook.start_deploy(endpoint_name="ag-af-ep", model_uri=MODEL_URI, instance_type="ml.c5.xlarge")
        assert calls.index("DeregisterScalableTarget") < calls.index("UpdateEndpoint")
        assert backend.describe_autoscaling("ag-af-ep") is None  # not scaled during the update
        new = plan["config_name"]
        stub.add_response("describe_endpoint", _endpoint("InService", new), {"EndpointName": "ag-af-ep"})
        stub.add_response(
            "describe_endpoint_config",
            {
                "EndpointConfigName": "ag-af-ep-c-old",
                "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:1:endpoint-config/old",
                "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "ag-af-ep-m-old"}],
                "CreationTime": datetime.datetime.now(datetime.UTC),
            },
            {"EndpointConfigName": "ag-af-ep-c-old"},
        )
        stub.add_response("delete_endpoint_config", {}, {"EndpointConfigName": "ag-af-ep-c-old"})
        stub.add_response("delete_model", {}, {"ModelName": "ag-af-ep-m-old"})
        hook.finish_deploy(plan)
        stub.assert_no_pending_responses()
    # a deploy that does not mention autoscaling keeps the policy the endpoint had
    restored = backend.describe_autoscaling("ag-af-ep")
    assert restored == {
        "min_capacity": 2,
        "max_capacity": 4,
        "target_invocations_per_instance": 100.0,
        "scale_in_cooldown": 600,
        "scale_out_cooldown": 60,
    }


def test_failed_update_call_restores_autoscaling(hook):
    from tests.sagemaker.test_sagemaker_serving import MODEL_URI, _endpoint, _put_model, _queue_new_model_and_config

    _put_model({"autogluon_version": "1.5.0"})
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    scaling = boto3.client("application-autoscaling", region_name=REGION)
    backend = SageMakerBackend(
        lambda svc: sagemaker if svc == "sagemaker" else scaling, region_name=REGION, sleep=lambda s: None
    )
    hook.__dict__["backend"] = backend
    backend.put_autoscaling("ag-af-ep", {**POLICY, "scale_out_cooldown": 300})
    with Stubber(sagemaker) as stub:
        _queue_new_model_and_config(stub)
        stub.add_response("describe_endpoint", _endpoint("InService", "ag-af-ep-c-old"), {"EndpointName": "ag-af-ep"})
        stub.add_client_error("update_endpoint", "ValidationException", "cannot update an autoscaled variant")
        stub.add_response("delete_endpoint_config", {}, None)
        stub.add_response("delete_model", {}, None)
        with pytest.raises(ClientError, match="cannot update"):
            hook.start_deploy(endpoint_name="ag-af-ep", model_uri=MODEL_URI, instance_type="ml.c5.xlarge")
        stub.assert_no_pending_responses()
    assert backend.describe_autoscaling("ag-af-ep")["min_capacity"] == 2  # the endpoint scales as before
