"""The multimodal kind: ``MultiModalPredictor``, saved standalone; rows are independent, like tabular."""

from __future__ import annotations

from airflow_autogluon_cloud.kinds.base import ROWS, PredictorKind, TransformShape

MULTIMODAL = PredictorKind(
    name="multimodal",
    package="autogluon.multimodal",
    class_name="MultiModalPredictor",
    label_key="label",
    batch_split=ROWS,
    transform=TransformShape("Line", "MultiRecord", "text/csv", "application/jsonl", "Line"),
    answer_columns=("<label>", "<class>_proba..."),
    evaluable=False,
    scores_in_training_job=True,
    summary_fields=("class_labels",),
    # MultiModalPredictor.load takes no require_version_match.
    load_accepts_version_check=False,
)
