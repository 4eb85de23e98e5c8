"""The multimodal kind, container side: ``MultiModalPredictor`` (text, image, tabular+text), saved
standalone so serving needs no model hub; rows are independent, answers as tabular. Part of the
predictor kinds (``ag_kinds.py``).

Evaluation scores it as tabular does (AutoGluon's metrics on the holdout, per-row evidence for the
paired statistics), with the classes encoded by ``class_labels`` order.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from ag_kinds import BadRequestError, InputError, Kind, attr

CLASSIFICATION = ("binary", "multiclass")
IMAGE_TYPES = ("image_path",)
#: The images staged beside each input (AutoGluon Cloud's channel names).
IMAGE_CHANNELS = {"train_data": "SM_CHANNEL_TRAIN_IMAGES", "tuning_data": "SM_CHANNEL_TUNE_IMAGES"}
PARQUET_ENVELOPE = "application/x-autogluon-parquet"
RAW_IMAGE = "application/x-image"


def image_columns(column_types: dict[str, Any]) -> list[str]:
    return [str(c) for c, kind in (column_types or {}).items() if str(kind) in IMAGE_TYPES]


def unpack_images(channel_dir: Path, target: Path) -> Path:
    """Every zip in the channel unpacked under ``target``; a member may not leave it."""
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    for archive in sorted(channel_dir.glob("*.zip")):
        with zipfile.ZipFile(archive) as zipped:
            for name in zipped.namelist():
                if not (root / name).resolve().is_relative_to(root):
                    raise InputError(f"{archive.name} has an unsafe member {name!r}")
            zipped.extractall(root)
    return root


def _image_dir() -> Path:
    folder = Path(os.environ.get("AG_IMAGE_DIR") or Path(tempfile.gettempdir()) / "ag_images")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_image(data: bytes) -> str:
    """Request image bytes as a file (content-addressed), for the predictor to read by path."""
    if not data:
        raise BadRequestError(400, "an image is empty")
    suffix = ".png" if data.startswith(b"\x89PNG") else ".jpg" if data.startswith(b"\xff\xd8") else ".img"
    path = _image_dir() / f"image_{hashlib.sha1(data).hexdigest()}{suffix}"  # a file name, not security
    if not path.is_file():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return str(path)


class MultiModalKind(Kind):
    name = "multimodal"
    leaderboard = False
    paired_statistics = True

    def training_data(self, frame: Any, args: dict[str, Any], static: Any = None, channel: str = "train_data") -> Any:
        """Image columns re-based on the unpacked image channel (their paths are relative to it)."""
        columns = image_columns((args.get("predictor_fit_args") or {}).get("column_types") or {})
        if not columns:
            return frame
        variable = IMAGE_CHANNELS.get(channel, "")
        channel_dir = os.environ.get(variable)
        if not channel_dir or not Path(channel_dir).is_dir():
            raise InputError(
                f"{channel} has image columns {columns} but the job has no {variable[11:].lower()} channel"
            )
        root = unpack_images(Path(channel_dir), _image_dir() / channel)
        frame = frame.copy()
        for column in columns:
            frame[column] = frame[column].map(lambda v: str(root / v) if isinstance(v, str) else v)
        return frame

    def after_fit(self, predictor: Any, model_dir: Path, log: Any) -> None:
        # Standalone: the backbones' weights and tokenizers go into the model, so serving needs no hub.
        log.info("Saving the multimodal predictor standalone to %s", model_dir)
        predictor.save(str(model_dir), standalone=True)

    def summary_fields(self, predictor: Any, args: dict[str, Any]) -> dict[str, Any]:
        class_labels = attr(predictor, "class_labels")
        label = str(attr(predictor, "label"))
        column_types = {str(k): str(v) for k, v in (attr(predictor, "column_types") or {}).items() if str(k) != label}
        return {
            "features": list(column_types),
            "column_types": column_types,
            "class_labels": [str(c) for c in class_labels] if class_labels is not None else None,
        }

    def serving_state(self, model: Any) -> None:
        super().serving_state(model)
        model.can_predict_proba = model.summary.get("class_labels") is not None

    def read_request(self, model: Any, body: Any, content_type: str | None, general: Any) -> Any:
        """Images arrive as bytes: one raw image (``application/x-image``), or a frame whose image
        columns carry base85 bytes (``application/x-autogluon-parquet``); each is written to a file
        and the column holds its path. Anything else is rows, as for tabular."""
        media = (content_type or "").split(";")[0].strip().lower()
        if media not in (RAW_IMAGE, PARQUET_ENVELOPE):
            return general(model, body, content_type)
        import pandas as pd

        raw = body.encode() if isinstance(body, str) else bytes(body or b"")
        columns = image_columns(model.summary.get("column_types") or {})
        if media == RAW_IMAGE:
            if len(columns) != 1 or len(model.features) != 1:
                raise BadRequestError(
                    415, f"a raw image is one value; this model reads {model.features}: send a frame instead"
                )
            return pd.DataFrame({columns[0]: [write_image(raw)]})
        try:
            envelope = json.loads(raw)
            if envelope.get("version") != 1:
                raise ValueError(f"unsupported envelope version {envelope.get('version')!r}")
            frame = pd.read_parquet(io.BytesIO(base64.b64decode(envelope["data"])))
            for column in envelope.get("image_columns") or []:
                frame[column] = frame[column].map(
                    lambda v: write_image(base64.b85decode(v)) if isinstance(v, str) else v
                )
        except BadRequestError:
            raise
        except Exception as err:
            raise BadRequestError(
                400, f"could not read the {PARQUET_ENVELOPE} body: {type(err).__name__}: {err}"
            ) from None
        missing = [f for f in model.features if f not in frame.columns]
        if missing:
            raise BadRequestError(400, f"missing columns: {', '.join(missing)} (expected: {', '.join(model.features)})")
        return frame[model.features].reset_index(drop=True)

    def predict(self, model: Any, frame: Any, options: dict[str, Any]) -> Any:
        import pandas as pd

        predictor = model.predictor
        if model.can_predict_proba:
            proba = predictor.predict_proba(frame, as_pandas=True, as_multiclass=True)
            columns = {model.label: pd.Series(proba.idxmax(axis=1)).to_numpy()}
            for cls in proba.columns:
                columns[f"{cls}_proba"] = proba[cls].to_numpy()
            return pd.DataFrame(columns)
        return pd.DataFrame({model.label: pd.Series(predictor.predict(frame, as_pandas=True)).to_numpy()})

    # evaluation -------------------------------------------------------------------------------

    def check_evaluated(self, key: str, predictor: Any, args: dict[str, Any]) -> None:
        label, problem_type = args["label"], args["problem_type"]
        if str(predictor.label) != label or str(predictor.problem_type) != problem_type:
            raise InputError(
                f"model {key!r} predicts {predictor.label!r} ({predictor.problem_type}), not {label!r} ({problem_type})"
            )

    def directions(self, problem_type: str, metrics: list[str]) -> dict[str, bool]:
        import kind_tabular

        return kind_tabular.KIND.directions(problem_type, metrics)

    def evaluate(
        self, predictor: Any, frame: Any, args: dict[str, Any], metrics: list[str], evidence: Any = None
    ) -> dict[str, Any]:
        """Each metric of ``metrics`` on ``frame``; ``evidence`` gets the per-row labels, predictions and
        probabilities, classes encoded by their position in ``class_labels``."""
        import pandas as pd
        from kind_tabular import score_metrics

        label, problem_type = args["label"], args["problem_type"]
        features = frame.drop(columns=[label])
        y_pred = pd.Series(predictor.predict(features, as_pandas=True)).reset_index(drop=True)
        y_true = frame[label].reset_index(drop=True)
        y_proba = None
        if problem_type in CLASSIFICATION:
            codes = {str(c): i for i, c in enumerate(predictor.class_labels)}
            y_true = y_true.astype(str).map(codes)
            unknown = frame[label].reset_index(drop=True)[y_true.isna()]
            if len(unknown):
                raise InputError(f"label {unknown.iloc[0]!r} is not one of the model's classes {list(codes)}")
            y_pred = y_pred.astype(str).map(codes)
            proba = predictor.predict_proba(features, as_pandas=False, as_multiclass=True)
            y_proba = proba[:, 1] if problem_type == "binary" else proba
            y_true, y_pred = y_true.astype("int64"), y_pred.astype("int64")
        if evidence is not None:
            evidence.update(y=y_true.to_numpy(), pred=y_pred.to_numpy(), proba=y_proba)
        return score_metrics(metrics, problem_type, y_true.to_numpy(), y_pred.to_numpy(), y_proba)

    def best_model(self, predictor: Any) -> str:
        return "MultiModalPredictor"  # one model, no leaderboard


KIND = MultiModalKind()
