"""The tabular kind: ``TabularPredictor`` on independent rows; answers ``[label, <class>_proba...]``."""

from __future__ import annotations

from dataclasses import dataclass

from airflow_autogluon_cloud.kinds.base import ROWS, PredictorKind, TransformShape

# The metric names AutoGluon 1.x accepts per problem type (autogluon.core.metrics.METRICS), so a
# wrong metric is refused at submission without importing AutoGluon in the worker.
_CLASSIFICATION = {"accuracy", "acc", "balanced_accuracy", "mcc", "log_loss", "nll", "pac", "pac_score"}
_CLASSIFICATION |= {"quadratic_kappa"} | {
    f"{m}_{a}" for m in ("precision", "recall", "f1") for a in ("macro", "micro", "weighted")
}
METRICS_BY_PROBLEM_TYPE: dict[str, frozenset[str]] = {
    "binary": frozenset(_CLASSIFICATION | {"roc_auc", "average_precision", "precision", "recall", "f1"}),
    "multiclass": frozenset(
        _CLASSIFICATION
        | {"roc_auc_ovo", "roc_auc_ovo_macro", "roc_auc_ovo_weighted", "roc_auc_ovr", "roc_auc_ovr_macro"}
        | {"roc_auc_ovr_micro", "roc_auc_ovr_weighted"}
    ),
    "regression": frozenset(
        {"r2", "mean_squared_error", "mse", "root_mean_squared_error", "rmse", "mean_absolute_error", "mae"}
        | {"median_absolute_error", "mean_absolute_percentage_error", "mape", "spearmanr", "pearsonr"}
        | {"symmetric_mean_absolute_percentage_error", "smape"}
    ),
}
#: Reported beside the eval metric unless ``metrics`` says otherwise (AutoGluon's auxiliary set).
DEFAULT_METRICS = {
    "binary": ["accuracy", "balanced_accuracy", "mcc", "roc_auc", "f1", "precision", "recall", "log_loss"],
    "multiclass": ["accuracy", "balanced_accuracy", "mcc", "log_loss"],
    "regression": ["root_mean_squared_error", "mean_absolute_error", "r2"],
}


@dataclass(frozen=True)
class TabularKind(PredictorKind):
    """Tabular predictors: the metrics evaluation may report, per problem type."""

    def metric_names(self, problem_type: str | None) -> frozenset[str]:
        return METRICS_BY_PROBLEM_TYPE.get(str(problem_type), frozenset())

    def default_metrics(self, problem_type: str | None) -> list[str]:
        return list(DEFAULT_METRICS.get(str(problem_type), []))


TABULAR = TabularKind(
    name="tabular",
    package="autogluon.tabular",
    class_name="TabularPredictor",
    label_key="label",
    batch_split=ROWS,
    # Rows are independent: SageMaker may cut the input at any line, many lines per request.
    transform=TransformShape("Line", "MultiRecord", "text/csv", "application/jsonl", "Line"),
    answer_columns=("<label>", "<class>_proba..."),
    evaluable=True,
    scores_in_training_job=True,
    summary_fields=("features", "class_labels", "model_names"),
)
