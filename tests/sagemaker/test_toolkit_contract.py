"""The container scripts under the real SageMaker toolkits the AWS AutoGluon images run.

Training: the exact CreateTrainingJob request recorded under moto is laid out as SageMaker lays out
a training container (``input/config/*.json``, each channel's objects under ``input/data/<channel>``)
and ``sagemaker_training.cli.train`` runs it. Serving: ``sagemaker_inference``'s ``Transformer``
loads a trained model directory with ``code/`` on the path and answers requests through
``transform(data, context)``, as the inference container's model server calls it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import boto3
import pandas as pd
import pytest

from tests.conftest import LABEL
from tests.sagemaker.conftest import REGION

pytestmark = [pytest.mark.slow, pytest.mark.compat]

# The toolkit waits until every host in resourceconfig.json resolves; algo-1 never does here.
HOST = "localhost"
OPT_ML = Path("/opt/ml")


def lay_out_training_container(request: dict, base: Path) -> Path:
    """The container tree SageMaker builds from a CreateTrainingJob request, under ``base``."""
    config = base / "input" / "config"
    config.mkdir(parents=True)
    # SageMaker writes the hyperparameters exactly as sent: strings (here JSON-encoded by the provider).
    (config / "hyperparameters.json").write_text(json.dumps(request["HyperParameters"]))
    channels = {}
    s3 = boto3.client("s3", region_name=REGION)
    for channel in request["InputDataConfig"]:
        name, source = channel["ChannelName"], channel["DataSource"]["S3DataSource"]
        channels[name] = {
            "TrainingInputMode": request["AlgorithmSpecification"]["TrainingInputMode"],
            "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
            "RecordWrapperType": channel.get("RecordWrapperType", "None"),
            **({"ContentType": channel["ContentType"]} if "ContentType" in channel else {}),
        }
        bucket, prefix = source["S3Uri"].removeprefix("s3://").split("/", 1)
        target = base / "input" / "data" / name
        target.mkdir(parents=True)
        for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
            # An S3Prefix channel gets every object under the prefix, keyed by the rest of its key.
            relative = obj["Key"][len(prefix) :].lstrip("/") or obj["Key"].rsplit("/", 1)[-1]
            s3.download_file(bucket, obj["Key"], str(target / relative))
    (config / "inputdataconfig.json").write_text(json.dumps(channels))
    instance_type = request["ResourceConfig"]["InstanceType"]
    (config / "resourceconfig.json").write_text(
        json.dumps(
            {
                "current_host": HOST,
                "hosts": [HOST],
                "current_group_name": "homogeneousCluster",
                "current_instance_type": instance_type,
                "instance_groups": [
                    {"instance_group_name": "homogeneousCluster", "instance_type": instance_type, "hosts": [HOST]}
                ],
                "network_interface_name": "eth0",
            }
        )
    )
    for directory in ("model", "output/data", "code"):
        (base / directory).mkdir(parents=True, exist_ok=True)
    return base


@contextlib.contextmanager
def opt_ml_is(base: Path):
    """``/opt/ml`` pointing at ``base`` while the toolkit runs.

    Everything the toolkit derives itself follows ``SAGEMAKER_BASE_DIR``; the one absolute container
    path is the one the provider sends, ``sagemaker_submit_directory=/opt/ml/input/data/code/...``,
    which must resolve as it does in the container.
    """
    if OPT_ML.exists() or OPT_ML.is_symlink():
        pytest.skip("/opt/ml already exists on this machine; not replacing it")
    try:
        OPT_ML.parent.mkdir(parents=True, exist_ok=True)
        OPT_ML.symlink_to(base, target_is_directory=True)
    except OSError as err:
        pytest.skip(f"cannot create /opt/ml here ({err})")
    try:
        yield
    finally:
        OPT_ML.unlink()


def test_training_job_request_runs_under_the_sagemaker_training_toolkit(hook, record, churn_frames, tmp_path):
    train, _ = churn_frames
    recorder = record(hook.backend.client("sagemaker"), "CreateTrainingJob")
    hook.start_training(
        job_name="ag-af-fit-toolkit",
        train_data=train.head(300),
        tuning_data=train.tail(100),
        predictor_init_args={"label": LABEL, "eval_metric": "roc_auc"},
        predictor_fit_args={"time_limit": 20, "hyperparameters": {"GBM": {"num_boost_round": 20}}, "verbosity": 1},
        instance_type="ml.m5.xlarge",
        framework_version="1.5",
        predict_data=train.head(7),  # train and score in one job; the label column is dropped by serve.py
    )
    [request] = recorder.calls["CreateTrainingJob"]
    base = lay_out_training_container(request, tmp_path / "ml")
    assert json.loads((base / "input/config/hyperparameters.json").read_text()) == request["HyperParameters"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "AWS_"))}
    env.update(SAGEMAKER_BASE_DIR=str(base), AWS_REGION=REGION, PYTHONUNBUFFERED="1")
    with opt_ml_is(base):
        done = subprocess.run(
            [sys.executable, "-m", "sagemaker_training.cli.train"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    log = done.stdout[-4000:] + done.stderr[-4000:]
    assert done.returncode == 0, log
    assert (base / "output" / "success").exists(), log
    model = base / "model"
    assert (model / "predictor.pkl").is_file(), sorted(p.name for p in model.iterdir())
    assert (model / "code" / "serve.py").is_file()
    summary = json.loads((model / "training_summary.json").read_text())
    assert summary["label"] == LABEL
    # the toolkit itself ran the script from the code channel and reported success
    assert "Reporting training SUCCESS" in log
    assert (base / "code" / "train.py").is_file()  # extracted from sourcedir.tar.gz by the toolkit

    from autogluon.tabular import TabularPredictor

    loaded = TabularPredictor.load(str(model), require_version_match=False)
    assert loaded.label == LABEL
    assert len(loaded.predict(train.head(5).drop(columns=[LABEL]))) == 5
    # the predict_data channel was scored in the job, into SM_OUTPUT_DATA_DIR (output.tar.gz)
    scored = pd.read_json(base / "output" / "data" / "predictions.jsonl", lines=True)
    assert scored[LABEL].tolist() == loaded.predict(train.head(7)).tolist()
    assert json.loads((base / "output" / "data" / "training_summary.json").read_text())["predictions"] == {
        "file": "predictions.jsonl",
        "rows": 7,
    }


# --------------------------------------------------------------------------------------- serving


class _RequestProcessor:
    def __init__(self, headers: dict[str, str]) -> None:
        self._headers = headers

    def get_request_properties(self) -> dict[str, str]:
        return self._headers


class ModelServerContext:
    """The parts of the model server's request context that ``Transformer.transform`` reads and sets."""

    def __init__(self, model_dir: Path, headers: dict[str, str]) -> None:
        self.system_properties = {"model_dir": str(model_dir), "gpu_id": None}
        self.request_processor = [_RequestProcessor(headers)]
        self.status: tuple[int, str] | None = None
        self.content_type: str | None = None

    def set_response_content_type(self, index: int, value: str) -> None:
        self.content_type = value

    def set_response_status(self, code: int, phrase: str) -> None:
        self.status = (code, phrase)


@pytest.fixture(scope="module")
def model_dir(trained_job, tmp_path_factory) -> Path:
    """The shared fit's model.tar.gz, extracted as the serving container extracts it to /opt/ml/model."""
    directory = tmp_path_factory.mktemp("opt-ml") / "model"
    with tarfile.open(trained_job["model_artifact_uri"]) as tar:
        tar.extractall(directory, filter="data")
    assert (directory / "code" / "serve.py").is_file()
    return directory


@pytest.fixture(scope="module")
def transformer(model_dir):
    """``sagemaker_inference``'s Transformer with the provider's serve.py as the user module."""
    from sagemaker_inference.default_inference_handler import DefaultInferenceHandler
    from sagemaker_inference.transformer import Transformer

    saved_path, saved_env = list(sys.path), dict(os.environ)
    os.environ.update(SAGEMAKER_PROGRAM="serve.py", SAGEMAKER_SUBMIT_DIRECTORY=str(model_dir / "code"))
    sys.path.insert(0, str(model_dir / "code"))  # the inference container puts code/ on the path
    sys.modules.pop("serve", None)
    try:
        yield Transformer(default_inference_handler=DefaultInferenceHandler())
    finally:
        sys.path[:] = saved_path
        os.environ.clear()
        os.environ.update(saved_env)
        sys.modules.pop("serve", None)


@pytest.fixture(scope="module")
def expected(model_dir, churn_frames):
    from autogluon.tabular import TabularPredictor

    _, test = churn_frames
    rows = test.head(6)
    return rows, TabularPredictor.load(str(model_dir)).predict(rows).tolist()


def _call(transformer, model_dir, body: bytes | str, content_type: str, accept: str | None = "application/json"):
    headers = {"Content-Type": content_type}
    if accept is not None:
        headers["Accept"] = accept
    context = ModelServerContext(model_dir, headers)
    [answer] = transformer.transform([{"body": body.encode() if isinstance(body, str) else body}], context)
    return answer, context


def _labels(answer: bytes | str, content_type: str) -> list:
    text = answer.decode() if isinstance(answer, bytes) else answer
    if content_type == "text/csv":
        return pd.read_csv(io.StringIO(text))[LABEL].tolist()
    if content_type == "application/jsonl":
        return [json.loads(line)[LABEL] for line in text.splitlines() if line]
    return [r[LABEL] for r in json.loads(text)]


def _parquet(rows: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    rows.to_parquet(buf, index=False)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("content_type", "make_body"),
    [
        ("text/csv", lambda rows: rows.to_csv(index=False)),
        ("text/csv", lambda rows: rows.to_csv(index=False, header=False)),  # training column order
        ("text/csv", lambda rows: rows.to_csv()),  # the seed's unnamed index column first
        ("application/json", lambda rows: rows.to_json(orient="records")),
        ("application/jsonl", lambda rows: rows.to_json(orient="records", lines=True)),
        ("application/x-parquet", _parquet),
    ],
    ids=["csv-header", "csv-no-header", "csv-index-column", "json", "jsonl", "parquet"],
)
def test_every_content_type_through_the_inference_toolkit(transformer, model_dir, expected, content_type, make_body):
    rows, labels = expected
    answer, context = _call(transformer, model_dir, make_body(rows), content_type)
    assert context.status is None, answer
    assert context.content_type == "application/json"
    assert _labels(answer, "application/json") == labels


@pytest.mark.parametrize("accept", ["text/csv", "application/jsonl", "application/json"])
def test_each_accept_type_is_answered_in_kind(transformer, model_dir, expected, accept):
    rows, labels = expected
    answer, context = _call(transformer, model_dir, rows.to_csv(index=False), "text/csv", accept)
    assert context.status is None, answer
    assert context.content_type == accept
    assert _labels(answer, accept) == labels


@pytest.mark.parametrize("accept", ["*/*", None])
def test_any_or_no_accept_gets_the_toolkits_default(transformer, model_dir, expected, accept):
    rows, labels = expected
    answer, context = _call(transformer, model_dir, rows.to_csv(index=False), "text/csv", accept)
    assert context.status is None, answer
    assert context.content_type == "application/json"  # SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT's default
    assert _labels(answer, "application/json") == labels


@pytest.mark.parametrize(
    ("body", "content_type", "accept", "status", "message"),
    [
        ("not json", "application/json", "application/json", 400, "not valid JSON"),
        ('{"a": 1}\nnot json', "application/jsonl", "application/json", 400, "line 2"),
        (b"PAR1 broken", "application/x-parquet", "application/json", 400, "Parquet"),
        ("", "text/csv", "application/json", 400, "empty"),
        ("tenure_months\n3\n", "text/csv", "application/json", 400, "missing columns"),
        ("a,b\n1,2\n", "application/xml", "application/json", 415, "unsupported content type"),
        (None, "text/csv", "application/xml", 406, "unsupported Accept type"),
    ],
    ids=["bad-json", "bad-jsonl", "bad-parquet", "empty", "missing-columns", "unknown-content-type", "unknown-accept"],
)
def test_bad_requests_are_4xx_not_500(transformer, model_dir, expected, body, content_type, accept, status, message):
    rows, _ = expected
    answer, context = _call(
        transformer, model_dir, rows.to_csv(index=False) if body is None else body, content_type, accept
    )
    assert context.status is not None
    assert context.status[0] == status, answer
    assert message in answer
