"""The multimodal kind, container side: ``MultiModalPredictor``, saved standalone so serving needs
no model hub; rows are independent, answers as tabular. Part of the predictor kinds (``ag_kinds.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ag_kinds import Kind


class MultiModalKind(Kind):
    name = "multimodal"
    leaderboard = False

    def after_fit(self, predictor: Any, model_dir: Path, log: Any) -> None:
        # Standalone: serving then needs no access to a model hub.
        log.info("Saving the multimodal predictor standalone to %s", model_dir)
        predictor.save(str(model_dir), standalone=True)

    def summary_fields(self, predictor: Any, args: dict[str, Any]) -> dict[str, Any]:
        from ag_kinds import attr

        class_labels = attr(predictor, "class_labels")
        return {"features": [], "class_labels": [str(c) for c in class_labels] if class_labels is not None else None}

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


KIND = MultiModalKind()
