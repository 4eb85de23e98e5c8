"""An image job under the real SageMaker toolkits: the CreateTrainingJob request recorded under moto
(its ``train_images`` channel included) runs through ``sagemaker_training``, and the model it leaves
answers image payloads through ``sagemaker_inference``'s Transformer: raw ``application/x-image``
bytes and a parquet-in-JSON envelope with base85 images, as ``MultiModalPredictor`` answers in this
process. Offline: random backbone weights in a temporary Hugging Face cache."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from airflow_autogluon_cloud.kinds.images import encode_envelope
from tests.multimodal import IMAGE_FIT_ARGS, MULTIMODAL, fill_hub_cache, write_pngs
from tests.sagemaker.conftest import REGION
from tests.sagemaker.test_toolkit_contract import ModelServerContext, lay_out_training_container, opt_ml_is

pytestmark = [*MULTIMODAL, pytest.mark.slow]


def serve(model, requests: list[tuple[bytes, str]]) -> list[tuple[object, ModelServerContext]]:
    """Each (body, content type) through the toolkit's Transformer and the model's serve.py."""
    from sagemaker_inference.default_inference_handler import DefaultInferenceHandler
    from sagemaker_inference.transformer import Transformer

    saved_path, saved_env = list(sys.path), dict(os.environ)
    os.environ.update(SAGEMAKER_PROGRAM="serve.py", SAGEMAKER_SUBMIT_DIRECTORY=str(model / "code"))
    sys.path.insert(0, str(model / "code"))
    for name in ("serve", "ag_kinds", "kind_timeseries", "kind_tabular", "kind_multimodal", "fast_csv"):
        sys.modules.pop(name, None)
    answers = []
    try:
        transformer = Transformer(default_inference_handler=DefaultInferenceHandler())
        for body, content_type in requests:
            context = ModelServerContext(model, {"Content-Type": content_type, "Accept": "application/json"})
            [answer] = transformer.transform([{"body": body}], context)
            answers.append((answer, context))
    finally:
        sys.path[:] = saved_path
        os.environ.clear()
        os.environ.update(saved_env)
        sys.modules.pop("serve", None)
    return answers


def test_an_image_job_trains_and_serves_image_payloads_under_the_toolkits(hook, record, tmp_path):
    from autogluon.multimodal import MultiModalPredictor

    home = fill_hub_cache(tmp_path / "hf-home")
    train, new = (
        write_pngs(tmp_path / "images" / "train", 24, seed=5),
        write_pngs(tmp_path / "images" / "new", 3, seed=6),
    )
    recorder = record(hook.backend.client("sagemaker"), "CreateTrainingJob")
    hook.start_training(
        job_name="ag-af-mm-toolkit",
        train_data=train,
        predictor_type="multimodal",
        predictor_init_args={"label": "shade"},
        predictor_fit_args=IMAGE_FIT_ARGS,
        framework_version="1.5",
    )
    [request] = recorder.calls["CreateTrainingJob"]
    assert "train_images" in {c["ChannelName"] for c in request["InputDataConfig"]}
    base = lay_out_training_container(request, tmp_path / "ml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "AWS_"))}
    env.update(
        SAGEMAKER_BASE_DIR=str(base),
        AWS_REGION=REGION,
        PYTHONUNBUFFERED="1",
        HF_HUB_OFFLINE="1",
        HF_HOME=str(home),
        AG_IMAGE_DIR=str(tmp_path / "job-images"),
    )
    with opt_ml_is(base):
        done = subprocess.run(
            [sys.executable, "-m", "sagemaker_training.cli.train"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    log = done.stdout[-4000:] + done.stderr[-4000:]
    assert done.returncode == 0, log
    assert "Reporting training SUCCESS" in log
    model = base / "model"
    summary = json.loads((model / "training_summary.json").read_text())
    assert summary["column_types"] == {"photo": "image_path"}

    os.environ["AG_IMAGE_DIR"] = str(tmp_path / "served-images")
    try:
        raw_image = Path(new["photo"].iloc[0]).read_bytes()
        answers = serve(
            model,
            [
                (raw_image, "application/x-image"),
                (encode_envelope(new[["photo"]], ["photo"]), "application/x-autogluon-parquet"),
            ],
        )
    finally:
        os.environ.pop("AG_IMAGE_DIR", None)
    predictor = MultiModalPredictor.load(str(model))
    expected = predictor.predict_proba(new[["photo"]], as_pandas=True, as_multiclass=True)
    for (answer, context), rows in zip(answers, (1, 3), strict=True):
        assert context.status is None, answer
        got = pd.read_json(io.BytesIO(answer if isinstance(answer, bytes) else answer.encode()))
        assert len(got) == rows
        assert got["shade"].astype(str).tolist() == expected.idxmax(axis=1).astype(str).tolist()[:rows]
        assert got["light_proba"].to_numpy() == pytest.approx(expected["light"].to_numpy()[:rows], abs=1e-5)
