"""serve.py, the handler every endpoint and batch job runs, called directly with a real model."""

from __future__ import annotations

import importlib.util
import io
import json

import pandas as pd
import pytest

from airflow_autogluon_cloud.archives import safe_extract
from tests.conftest import LABEL

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(trained_job, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("served")
    safe_extract(trained_job["model_artifact_uri"], model_dir)
    spec = importlib.util.spec_from_file_location("serve_under_test", model_dir / "code" / "serve.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, module.model_fn(str(model_dir))


def _status(served, body, content_type="text/csv", accept="application/json"):
    module, model = served
    with pytest.raises(module.BadRequestError) as err:
        module.transform_fn(model, body, content_type, accept)
    return err.value.status_code, str(err.value)


def test_every_accept_type(served, churn_frames):
    module, model = served
    _, test = churn_frames
    body = test.head(6).to_csv(index=False)
    outputs = {}
    for accept in ("application/json", "application/jsonl", "text/csv", "application/x-parquet", "*/*", ""):
        data, content_type = module.transform_fn(model, body, "text/csv; charset=utf-8", accept)
        if content_type == "application/x-parquet":
            frame = pd.read_parquet(io.BytesIO(data))
        elif content_type == "text/csv":
            frame = pd.read_csv(io.StringIO(data))
        elif content_type == "application/jsonl":
            frame = pd.read_json(io.StringIO(data), lines=True)
        else:
            frame = pd.DataFrame(json.loads(data))
        outputs[accept] = frame
        assert list(frame.columns) == [LABEL, "no_proba", "yes_proba"]
        assert len(frame) == 6
    assert all(f[LABEL].tolist() == outputs["text/csv"][LABEL].tolist() for f in outputs.values())


@pytest.mark.parametrize(
    ("body", "content_type", "accept", "status", "fragment"),
    [
        (b"", "text/csv", "application/json", 400, "empty"),
        (b"\x89PNG\r\n\x1a\n\x00garbage", "application/x-parquet", "application/json", 400, "Parquet"),
        (b"\xff\xfe\xfa", "text/csv", "application/json", 400, "UTF-8"),
        (b"{not json", "application/json", "application/json", 400, "not valid JSON"),
        (b'{"rows": 1}', "application/json", "application/json", 400, "missing columns"),
        (b"1,2,3\n4,5,6\n", "text/csv", "application/json", 400, "exactly 6 columns"),
        (b"a,b\n1,2\n", "application/xml", "application/json", 415, "unsupported content type"),
        (b"a,b\n1,2\n", "text/csv", "image/png", 406, "unsupported Accept"),
    ],
)
def test_bad_requests_are_4xx(served, body, content_type, accept, status, fragment):
    code, message = _status(served, body, content_type, accept)
    assert code == status
    assert fragment in message


def test_wrong_columns_named(served, churn_frames):
    _, test = churn_frames
    code, message = _status(
        served, test.drop(columns=["autopay", "plan"]).to_json(orient="records").encode(), "application/json"
    )
    assert code == 400
    assert "missing columns: plan, autopay" in message


def test_json_instances_and_extra_columns(served, churn_frames):
    module, model = served
    _, test = churn_frames
    rows = test.head(3).assign(extra_column=1)
    body = json.dumps({"instances": json.loads(rows.to_json(orient="records"))})
    data, _ = module.transform_fn(model, body, "application/json", "application/json")
    assert len(json.loads(data)) == 3


def test_loaded_model_is_frozen_out_of_the_collectors_sight(trained_job, tmp_path):
    """The serving processes load the model with the imports and then the model frozen (gc.freeze),
    so AutoGluon's full collections while persisting, and later ones, do not walk them."""
    import subprocess
    import sys

    model_dir = tmp_path / "model"
    safe_extract(trained_job["model_artifact_uri"], model_dir)
    probe = (
        "import gc, sys\n"
        "from airflow_autogluon_cloud.container.local_endpoint import load_handler\n"
        "module, model = load_handler(sys.argv[1], 'serve.py')\n"
        "tracked = gc.get_objects()\n"
        "print(gc.get_freeze_count() > 0, any(o is model for o in tracked),"
        " any(o is model.predictor for o in tracked), 'autogluon.tabular' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(model_dir)], capture_output=True, text=True, timeout=300, check=True
    )
    assert done.stdout.split()[-4:] == ["True", "False", "False", "True"], done.stdout + done.stderr
