"""What a batch-transform worker process runs: load the model once, then score mini-batches.

Kept apart from :mod:`.transform` so a spawned worker imports only this module and the serving
script, not Airflow (which the rest of the package needs for its exception types).
"""

from __future__ import annotations

import os
from typing import Any

from airflow_autogluon_cloud.backends.specs import SERVE_SCRIPT

_serve: Any = None
_model: Any = None


def init_worker(model_dir: str) -> None:
    """Load the model through ``code/serve.py``'s ``model_fn``, as the local endpoint does."""
    from airflow_autogluon_cloud.container.local_endpoint import load_handler

    global _serve, _model
    _serve, _model = load_handler(model_dir, os.environ.get("SAGEMAKER_PROGRAM", SERVE_SCRIPT))


def score(body: str, content_type: str, accept: str) -> bytes:
    """One mini-batch through ``transform_fn``; the answer always ends with a newline."""
    if _serve is None:
        raise RuntimeError("init_worker() has not loaded a model in this process")
    result = _serve.transform_fn(_model, body, content_type, accept)
    out = result[0] if isinstance(result, tuple) else result
    data = out.encode() if isinstance(out, str) else bytes(out)
    # AssembleWith=Line: every mini-batch's answer ends with a newline.
    return data if data.endswith(b"\n") else data + b"\n"
