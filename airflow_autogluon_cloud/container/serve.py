"""AutoGluon serving script (SageMaker inference-toolkit handler contract).

Copied into every model's ``code/`` directory by ``train.py``; the AWS AutoGluon inference
container and this provider's local endpoint and batch jobs all load it the same way:
``model_fn(model_dir)`` once, then ``transform_fn(model, body, content_type, accept)`` per request.

Requests: ``text/csv`` (with or without a header line), ``application/json`` (records, or
``{"instances": [...]}``), ``application/jsonl`` and ``application/x-parquet``. Answers, in the
``Accept`` type (JSON records by default): the prediction column named after the label, then one
``<class>_proba`` column per class for classifiers. Bad requests raise :class:`BadRequestError`
with a 4xx ``status_code``; they never surface as a 500.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

try:  # In the AWS inference container the toolkit maps this error type to its status code.
    from sagemaker_inference.errors import BaseInferenceToolkitError as _ErrorBase
except ImportError:  # pragma: no cover - outside the container
    _ErrorBase = Exception

CSV = "text/csv"
JSON = "application/json"
JSONL = "application/jsonl"
PARQUET = "application/x-parquet"
_ALIASES = {"application/jsonlines": JSONL, "application/x-jsonlines": JSONL, "application/parquet": PARQUET}
_ACCEPTED = (CSV, JSON, JSONL, PARQUET)


class BadRequestError(_ErrorBase):
    """A request the model cannot answer; ``status_code`` is 400, 406 or 415."""

    def __init__(self, status_code: int, message: str) -> None:
        self.status_code = status_code
        self.message = message
        try:
            super().__init__(status_code, message, "Bad Request")  # toolkit signature
        except TypeError:
            Exception.__init__(self, message)

    def __str__(self) -> str:
        return self.message


class LoadedModel:
    """The predictor and what each request needs, computed once at load time."""

    def __init__(self, predictor: Any, predictor_type: str, summary: dict[str, Any]) -> None:
        self.predictor = predictor
        self.predictor_type = predictor_type
        self.label = str(getattr(predictor, "label", None) or summary.get("label") or "prediction")
        features = summary.get("features") or list(getattr(predictor, "original_features", []) or [])
        self.features = [str(f) for f in features]
        self.feature_set = set(self.features)
        self.can_predict_proba = bool(getattr(predictor, "can_predict_proba", False))


def media_type(value: str | None) -> str:
    base = (value or "").split(";", 1)[0].strip().lower()
    return _ALIASES.get(base, base)


def model_fn(model_dir: str) -> LoadedModel:
    path = Path(model_dir)
    summary_path = path / "training_summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    predictor_type = summary.get("predictor_type", "tabular")
    if predictor_type == "timeseries":
        from autogluon.timeseries import TimeSeriesPredictor

        predictor = TimeSeriesPredictor.load(model_dir, require_py_version_match=False)
    elif predictor_type == "multimodal":
        from autogluon.multimodal import MultiModalPredictor

        predictor = MultiModalPredictor.load(model_dir)
    else:
        from autogluon.tabular import TabularPredictor

        predictor = TabularPredictor.load(model_dir, require_py_version_match=False)
        try:
            predictor.persist()  # keep every model in memory: no disk reads per request
        except Exception:
            pass
    return LoadedModel(predictor, predictor_type, summary)


def _text(body: bytes | str) -> str:
    if isinstance(body, str):
        return body
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequestError(400, "the request body is not UTF-8 text") from None


def _parse_csv(model: LoadedModel, text: str) -> Any:
    import pandas as pd

    first_line = text.split("\n", 1)[0]
    try:
        header = next(iter(pd.read_csv(io.StringIO(first_line), header=None, dtype=str).itertuples(index=False)))
    except Exception:
        header = ()
    names = {str(v).strip() for v in header}
    # A first row naming any feature is a header (a partial one then fails with "missing columns").
    has_header = not model.feature_set or bool(model.feature_set & names)
    try:
        if has_header:
            return pd.read_csv(io.StringIO(text))
        frame = pd.read_csv(io.StringIO(text), header=None)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
        raise BadRequestError(400, f"could not parse the CSV body: {err}") from None
    if len(frame.columns) != len(model.features):
        raise BadRequestError(
            400,
            f"the CSV has no header line matching the model and {len(frame.columns)} columns; expected a header "
            f"or exactly {len(model.features)} columns in this order: {', '.join(model.features)}",
        )
    frame.columns = model.features
    return frame


def _parse(model: LoadedModel, body: bytes | str, content_type: str) -> Any:
    import pandas as pd

    if body is None or len(body) == 0:
        raise BadRequestError(400, "the request body is empty")
    kind = media_type(content_type) or CSV
    if kind == CSV:
        return _parse_csv(model, _text(body))
    if kind == JSON:
        try:
            payload = json.loads(_text(body))
        except json.JSONDecodeError as err:
            raise BadRequestError(400, f"the body is not valid JSON: {err}") from None
        if isinstance(payload, dict) and "instances" in payload:
            payload = payload["instances"]
        try:
            if isinstance(payload, list):
                return pd.DataFrame.from_records(payload)
            if isinstance(payload, dict) and "columns" in payload and "data" in payload:
                return pd.DataFrame(payload["data"], columns=payload["columns"])
            if isinstance(payload, dict):
                return pd.DataFrame(payload)
        except (ValueError, TypeError) as err:
            raise BadRequestError(400, f"could not read records from the JSON body: {err}") from None
        raise BadRequestError(400, 'expected a JSON array of records or {"instances": [...]}')
    if kind == JSONL:
        try:
            return pd.read_json(io.StringIO(_text(body)), lines=True)
        except ValueError as err:
            raise BadRequestError(400, f"could not parse the JSON lines body: {err}") from None
    if kind == PARQUET:
        data = body.encode() if isinstance(body, str) else body
        try:
            return pd.read_parquet(io.BytesIO(data))
        except Exception as err:
            raise BadRequestError(400, f"could not read the Parquet body: {err}") from None
    raise BadRequestError(415, f"unsupported content type {content_type!r}; send one of {', '.join(_ACCEPTED)}")


def _align(model: LoadedModel, frame: Any) -> Any:
    if len(frame) == 0:
        raise BadRequestError(400, "the request has no rows")
    frame.columns = [str(c) for c in frame.columns]
    if not model.features:
        return frame
    missing = [f for f in model.features if f not in frame.columns]
    if missing:
        raise BadRequestError(
            400, f"missing columns: {', '.join(missing)} (the model expects: {', '.join(model.features)})"
        )
    return frame[model.features]


def predict(model: LoadedModel, frame: Any) -> Any:
    """The answer frame: the prediction named after the label, then ``<class>_proba`` columns."""
    import pandas as pd

    predictor = model.predictor
    if model.predictor_type != "tabular":
        result = predictor.predict(frame)
        return result.reset_index() if hasattr(result, "reset_index") else pd.DataFrame({model.label: result})
    try:
        if model.can_predict_proba:
            proba = predictor.predict_proba(frame, as_multiclass=True)
            pred = predictor.predict_from_proba(proba)
            out = pd.DataFrame({model.label: pred.to_numpy()})
            for cls in proba.columns:
                out[f"{cls}_proba"] = proba[cls].to_numpy()
            return out
        return pd.DataFrame({model.label: predictor.predict(frame).to_numpy()})
    except (KeyError, ValueError, TypeError) as err:
        # Wrong dtypes or unseen values the model cannot take: the request's fault, not the server's.
        raise BadRequestError(400, f"the model could not score these rows: {err}") from None


def _encode(frame: Any, accept: str) -> tuple[bytes | str, str]:
    kind = media_type(accept)
    if kind in ("", "*/*"):
        kind = media_type(os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", JSON))
    if kind == JSON:
        return frame.to_json(orient="records"), JSON
    if kind == JSONL:
        return frame.to_json(orient="records", lines=True).rstrip("\n") + "\n", JSONL
    if kind == CSV:
        return frame.to_csv(index=False), CSV
    if kind == PARQUET:
        buf = io.BytesIO()
        frame.columns = [str(c) for c in frame.columns]
        frame.to_parquet(buf, index=False)
        return buf.getvalue(), PARQUET
    raise BadRequestError(406, f"unsupported Accept type {accept!r}; ask for one of {', '.join(_ACCEPTED)}")


def transform_fn(model: LoadedModel, request_body: bytes | str, content_type: str, accept: str) -> tuple[Any, str]:
    kind = media_type(accept)
    if kind not in ("", "*/*", *_ACCEPTED):
        raise BadRequestError(406, f"unsupported Accept type {accept!r}; ask for one of {', '.join(_ACCEPTED)}")
    frame = _align(model, _parse(model, request_body, content_type))
    return _encode(predict(model, frame), accept)
