"""The multimodal kind, container side: ``MultiModalPredictor`` (text, image, tabular+text), saved
standalone so serving needs no model hub; rows are independent, answers as tabular. Part of the
predictor kinds (``ag_kinds.py``).

Evaluation scores it as tabular does (AutoGluon's metrics on the holdout, per-row evidence for the
paired statistics), with the classes encoded by ``class_labels`` order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ag_kinds import InputError, Kind, attr

CLASSIFICATION = ("binary", "multiclass")


class MultiModalKind(Kind):
    name = "multimodal"
    leaderboard = False
    paired_statistics = True

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
        from autogluon.core.metrics import compute_metric, get_metric
        from kind_tabular import finite

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
        scores: dict[str, float | None] = {}
        for name in metrics:
            scorer = get_metric(name, problem_type, "metric")
            if (scorer.needs_proba or scorer.needs_threshold) and y_proba is not None:
                needs = {"y_pred_proba": y_proba}
            else:
                needs = {"y_pred": y_pred.to_numpy()}
            score = compute_metric(y_true.to_numpy(), scorer, silent=True, **needs)
            scores[name] = finite(scorer.convert_score_to_original(score))
        return scores

    def best_model(self, predictor: Any) -> str:
        return "MultiModalPredictor"  # one model, no leaderboard


KIND = MultiModalKind()
