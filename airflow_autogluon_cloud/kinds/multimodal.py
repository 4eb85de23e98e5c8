"""The multimodal kind: ``MultiModalPredictor`` (text, image and tabular+text), saved standalone; rows
are independent, like tabular, and answers look the same (``[label, <class>_proba...]``).

The columns' types come from ``predictor_fit_args["column_types"]`` (AutoGluon's own argument,
e.g. ``{"review": "text", "photo": "image_path"}``); columns declared text are checked to hold
strings, and image columns to name readable images under one folder, before any job. The images
are staged as their own channels (``kinds/images.py``).
Evaluation scores the model on the holdout with the tabular metrics, so the registry and the gate
take multimodal models unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_autogluon_cloud.exceptions import InvalidParameterError
from airflow_autogluon_cloud.kinds.base import ROWS, PredictorKind, TransformShape
from airflow_autogluon_cloud.kinds.tabular import DEFAULT_METRICS, METRICS_BY_PROBLEM_TYPE

#: ``column_types`` values AutoGluon reads as text.
TEXT_TYPES = ("text",)
#: The channel each input's images are staged as (AutoGluon Cloud's names).
IMAGE_CHANNELS = {"train_data": "train_images", "tuning_data": "tune_images"}
#: A folder of images: one raw image per request, never split (AutoGluon Cloud's image batch).
IMAGE_FOLDER_TRANSFORM = TransformShape("None", "SingleRecord", "application/x-image", "application/jsonl", "None")


@dataclass(frozen=True)
class MultiModalKind(PredictorKind):
    """Multimodal predictors: declared column types are checked, metrics are tabular's."""

    def column_types(self, ag_args: dict[str, Any]) -> dict[str, str]:
        declared = (ag_args.get("predictor_fit_args") or {}).get("column_types") or {}
        if not isinstance(declared, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in declared.items()
        ):
            raise InvalidParameterError(
                "predictor_fit_args['column_types']",
                declared,
                'give a dict of column -> type, e.g. {"review": "text"}.',
            )
        return dict(declared)

    def check_fit_args(self, fit_args: dict[str, Any]) -> None:
        self.column_types({"predictor_fit_args": fit_args})

    def required_columns(self, label: str | None, ag_args: dict[str, Any]) -> list[str]:
        declared = [c for c in self.column_types(ag_args) if c != label]
        return [*([label] if label else []), *declared]

    def check_training_data(self, frame: Any, parameter: str, ag_args: dict[str, Any]) -> None:
        import pandas as pd

        label = self.label_of(ag_args.get("predictor_init_args") or {})
        # predict_data has no label (its presence in training data is checked with the required columns)
        if label is not None and label in frame.columns and frame[label].isna().all():
            raise InvalidParameterError(parameter, label, f"the label column {label!r} has no values.")
        from airflow_autogluon_cloud.kinds.images import common_folder, image_paths

        columns = self.image_columns(ag_args)
        if columns:
            common_folder(image_paths(frame, columns, parameter), parameter)
        for column, kind in self.column_types(ag_args).items():
            if kind not in TEXT_TYPES:
                continue
            values = frame[column].dropna()
            not_text = values[~values.map(lambda v: isinstance(v, str))]
            if len(values) == 0 or len(not_text) or not pd.api.types.is_object_dtype(frame[column].dtype):
                shown = not_text.iloc[0] if len(not_text) else "(no values)"
                raise InvalidParameterError(
                    parameter,
                    f"{column}={shown!r}",
                    f"column {column!r} is declared text (column_types) but holds {frame[column].dtype} values: "
                    "give it strings, or declare its real type.",
                )

    def evaluation_args(self, summary: dict[str, Any], windows: int) -> dict[str, Any]:
        super().evaluation_args(summary, windows)  # refuses backtest windows
        return {"predictor_type": self.name}

    def image_columns(self, ag_args: dict[str, Any]) -> list[str]:
        from airflow_autogluon_cloud.kinds.images import IMAGE_TYPES

        return [c for c, kind in self.column_types(ag_args).items() if kind in IMAGE_TYPES]

    def side_inputs(
        self, frame: Any, parameter: str, ag_args: dict[str, Any], workdir: Any
    ) -> tuple[Any, dict[str, Any]]:
        """The images of the image columns, zipped under their common folder, as ``train_images`` /
        ``tune_images``; the data's image columns then hold paths relative to that folder."""
        from pathlib import Path

        from airflow_autogluon_cloud.kinds.images import pack_images

        columns = self.image_columns(ag_args)
        if not columns:
            return None, {}
        if parameter not in IMAGE_CHANNELS:
            raise InvalidParameterError(parameter, columns, "image columns apply to training and tuning data only.")
        archive = Path(workdir) / f"{IMAGE_CHANNELS[parameter]}.zip"
        return pack_images(frame, columns, parameter, archive), {IMAGE_CHANNELS[parameter]: archive}

    def file_transform(self, test_data: Any, summary: dict[str, Any]) -> TransformShape | None:
        """A folder of images (a local directory or an ``s3://`` prefix ending in ``/``): each file is one
        raw-image request, as AutoGluon Cloud's image batch; only for a model reading one image column."""
        from airflow_autogluon_cloud.kinds.images import is_folder

        if not is_folder(test_data):
            return None
        features = list(summary.get("features") or [])
        columns = self.image_columns({"predictor_fit_args": {"column_types": summary.get("column_types") or {}}})
        if len(columns) != 1 or features != columns:
            raise InvalidParameterError(
                "test_data",
                str(test_data),
                f"a folder is scored one raw image per file, but this model reads {features}: give a table "
                "(DataFrame or file) with those columns instead.",
            )
        return IMAGE_FOLDER_TRANSFORM

    def metric_names(self, problem_type: str | None) -> frozenset[str]:
        return METRICS_BY_PROBLEM_TYPE.get(str(problem_type), frozenset())

    def default_metrics(self, problem_type: str | None) -> list[str]:
        return list(DEFAULT_METRICS.get(str(problem_type), []))


MULTIMODAL = MultiModalKind(
    name="multimodal",
    package="autogluon.multimodal",
    class_name="MultiModalPredictor",
    label_key="label",
    batch_split=ROWS,
    transform=TransformShape("Line", "MultiRecord", "text/csv", "application/jsonl", "Line"),
    answer_columns=("<label>", "<class>_proba..."),
    evaluable=True,
    scores_in_training_job=True,
    summary_fields=("class_labels",),
    # Text columns are checked on the whole data before a job.
    checks_whole_data=True,
    # MultiModalPredictor.load takes neither version check.
    load_accepts_version_check=False,
    load_accepts_py_version_check=False,
)
