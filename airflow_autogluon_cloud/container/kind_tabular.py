"""The tabular kind, container side: ``TabularPredictor`` on independent rows.

Answers hold the prediction named after the label and, for classifiers, one ``<class>_proba``
column per class. Part of the predictor kinds (see ``ag_kinds.py``); shipped beside it.
"""

from __future__ import annotations

from typing import Any

from ag_kinds import InputError, Kind, attr

#: Requests up to this many rows score a one-model ensemble as its model (see :func:`sole_member`).
SOLE_MEMBER_MAX_ROWS = 500
CLASSIFICATION = ("binary", "multiclass")


#: Training rows scored for the baseline's answers when there is no tuning data.
BASELINE_SCORED_ROWS = 5000


class TabularKind(Kind):
    name = "tabular"
    fast_csv = True
    combinable = True
    predict_options = ("decision_threshold", "model", "as_multiclass")
    paired_statistics = True
    profiles_rows = True

    def summary_fields(self, predictor: Any, args: dict[str, Any]) -> dict[str, Any]:
        class_labels = attr(predictor, "class_labels")
        return {
            "features": [str(f) for f in predictor.original_features],
            "class_labels": [str(c) for c in class_labels] if class_labels is not None else None,
        }

    def baseline_frames(self, predictor: Any, train: Any, tuning: Any) -> tuple[Any, Any, tuple[str, ...]]:
        """The training rows' features, and the model's answers on its tuning data, as serve.py gives them.

        Without tuning data the answers are for a sample of the training rows: in-sample
        probabilities are sharper than any batch's, so they are left out (the predicted class or
        value is kept).
        """
        import pandas as pd

        features = [str(f) for f in predictor.original_features]
        scored = tuning if tuning is not None else train.sample(n=min(len(train), BASELINE_SCORED_ROWS), random_state=0)
        rows = scored[features]
        label = str(predictor.label)
        if not attr(predictor, "can_predict_proba"):
            return train[features], pd.DataFrame({label: pd.Series(predictor.predict(rows)).to_numpy()}), ()
        proba = predictor.predict_proba(rows, as_multiclass=True)
        answers = pd.DataFrame({label: pd.Series(predictor.predict_from_proba(proba)).to_numpy()})
        if tuning is not None:
            for column in proba.columns:
                answers[f"{column}_proba"] = proba[column].to_numpy()
        return train[features], answers, (label,)

    # serving ----------------------------------------------------------------------------------

    def profiled_answers(self, model: Any, answers: Any) -> tuple[Any, tuple[str, ...]]:
        return answers, (model.label,) if model.can_predict_proba else ()

    def load(self, model_dir: str) -> Any:
        predictor = self.import_predictor().load(str(model_dir), require_py_version_match=False)
        try:
            predictor.persist()  # keep the models in memory: no disk reads per request
        except Exception as err:  # an optimisation only
            print(f"Could not persist the models in memory ({type(err).__name__}: {err}); continuing", flush=True)
        return predictor

    def serving_state(self, model: Any) -> None:
        import pandas as pd

        features = attr(model.predictor, "original_features")
        if features is None:
            features = model.summary.get("features") or []
        model.features = [str(f) for f in features]
        model.can_predict_proba = bool(attr(model.predictor, "can_predict_proba"))
        #: A classifier's classes as an array (``predict_proba``'s column order, the labels' own
        #: dtype) and its fitted decision threshold: read once, not on every request.
        if model.can_predict_proba:
            model.class_labels = list(attr(model.predictor, "class_labels") or [])
            model.class_array = pd.Index(model.class_labels).to_numpy()
            if model.problem_type == "binary":
                model.decision_threshold = float(attr(model.predictor, "decision_threshold") or 0.5)

    def model_names(self, predictor: Any) -> list[str] | None:
        return predictor.model_names()

    def scoring_model(self, model: Any) -> str | None:
        return sole_member(model.predictor, model.features)

    def predict(self, model: Any, frame: Any, options: dict[str, Any]) -> Any:
        import pandas as pd

        # The stacking step a one-model ensemble skips matters on small requests only; a large one
        # (a batch mini-batch) scores the ensemble as it is and never pays for the check.
        name = options.get("model") or (model.scoring_model if len(frame) <= SOLE_MEMBER_MAX_ROWS else None)
        chosen = {"model": name} if name else {}
        predictor = model.predictor
        if model.can_predict_proba:
            # Asked for as NumPy (columns in class_labels order), AutoGluon skips copying the request's
            # index; the answer is then built from the arrays, without the frames predict() would make.
            values = predictor.predict_proba(frame, as_pandas=False, as_multiclass=True, **chosen)
            return classified(model, values, options)
        return pd.DataFrame({model.label: pd.Series(predictor.predict(frame, **chosen)).to_numpy()})

    # evaluation -------------------------------------------------------------------------------

    def check_evaluated(self, key: str, predictor: Any, args: dict[str, Any]) -> None:
        label, problem_type = args["label"], args["problem_type"]
        if str(predictor.label) != label or str(predictor.problem_type) != problem_type:
            raise InputError(
                f"model {key!r} predicts {predictor.label!r} ({predictor.problem_type}), not {label!r} ({problem_type})"
            )

    def directions(self, problem_type: str, metrics: list[str]) -> dict[str, bool]:
        from autogluon.core.metrics import get_metric

        return {name: bool(get_metric(name, problem_type, "metric").greater_is_better_internal) for name in metrics}

    def evaluate(
        self, predictor: Any, frame: Any, args: dict[str, Any], metrics: list[str], evidence: Any = None
    ) -> dict[str, Any]:
        """Each metric of ``metrics`` for one predictor on ``frame``, in the metric's own units.

        :param evidence: filled with the per-row labels, predictions and probabilities (internal encoding).
        """
        label, problem_type = args["label"], args["problem_type"]
        features = frame.drop(columns=[label])
        y_true = frame[label]
        classification = problem_type in CLASSIFICATION
        y_internal = predictor.transform_labels(y_true) if classification else y_true
        y_pred = predictor.predict(features)
        y_pred_internal = predictor.transform_labels(y_pred) if classification else y_pred
        y_proba = None
        if classification:
            proba = predictor.predict_proba(features, as_multiclass=problem_type == "multiclass")
            y_proba = proba.to_numpy() if hasattr(proba, "to_numpy") else proba
        if evidence is not None:
            evidence.update(y=y_internal.to_numpy(), pred=y_pred_internal.to_numpy(), proba=y_proba)
        return score_metrics(metrics, problem_type, y_internal.to_numpy(), y_pred_internal.to_numpy(), y_proba)

    def best_model(self, predictor: Any) -> str:
        return str(predictor.model_best)


def score_metrics(metrics: list[str], problem_type: str, y_true: Any, y_pred: Any, y_proba: Any) -> dict[str, Any]:
    """AutoGluon's scorers on encoded labels: probabilities where a metric needs them, else predictions."""
    from autogluon.core.metrics import compute_metric, get_metric

    scores: dict[str, float | None] = {}
    for name in metrics:
        scorer = get_metric(name, problem_type, "metric")
        if (scorer.needs_proba or scorer.needs_threshold) and y_proba is not None:
            needs = {"y_pred_proba": y_proba}
        else:
            needs = {"y_pred": y_pred}
        scores[name] = finite(scorer.convert_score_to_original(compute_metric(y_true, scorer, silent=True, **needs)))
    return scores


def finite(value: Any) -> float | None:
    import math

    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) or math.isinf(number) else number


def classified(model: Any, values: Any, options: dict[str, Any]) -> Any:
    """The answer frame from ``predict_proba``'s array, with the labels ``predict`` would give.

    As AutoGluon decides: in a binary problem the positive class (the second) wins when its
    probability is above the decision threshold (the fitted one unless the request gives one);
    otherwise the most probable class, the first on a tie.
    """
    import pandas as pd

    if model.problem_type == "binary":
        threshold = options.get("decision_threshold")
        threshold = model.decision_threshold if threshold is None else threshold
        winners = (values[:, 1] > threshold).astype("intp")
    else:
        winners = values.argmax(axis=1)
    columns = {model.label: model.class_array[winners]}
    shown = range(len(model.class_labels))
    if model.problem_type == "binary" and options.get("as_multiclass") is False:
        shown = range(1, 2)  # only the positive class, as AutoGluon's as_multiclass=False
    for i in shown:
        columns[f"{model.class_labels[i]}_proba"] = values[:, i]
    return pd.DataFrame(columns, copy=False)


def _probe_rows(predictor: Any, features: list[str]) -> Any:
    """Two made-up rows of the training columns' raw types (numbers, text, flags)."""
    import pandas as pd

    types = dict(predictor.feature_metadata_in.type_map_raw)
    values = {"int": [0, 3], "float": [0.0, 2.5], "bool": [False, True], "datetime": ["2020-01-01", "2021-06-30"]}
    frame = pd.DataFrame({f: values.get(str(types.get(f)), ["", "a"]) for f in features})
    for f in features:
        if types.get(f) == "datetime":
            frame[f] = pd.to_datetime(frame[f])
    return frame


def sole_member(predictor: Any, features: list[str]) -> str | None:
    """The one model the best model, a weighted ensemble, is built on; else ``None``.

    Such an ensemble's probabilities are that model's times its weight, 1.0, so scoring the model
    alone gives the same answers without the stacking step: about a tenth of a 1-row request's
    cost. AutoGluon often ends up with one on a small table. Taken only when the ensemble needs
    exactly one other model and both give bit-identical answers on probe rows (an ensemble may
    also be calibrated, for example). The trainer's model graph is read directly: the public
    ``model_info`` measures model sizes with two full garbage collections, 0.2 s.
    """
    try:
        best = predictor.model_best
        trainer = predictor._trainer
        members = [m for m in trainer.get_minimum_model_set(best) if m != best]
        if len(members) != 1 or "WeightedEnsemble" not in getattr(
            trainer.get_model_attribute(best, "type"), "__name__", ""
        ):
            return None
        probe = _probe_rows(predictor, features)
        if predictor.can_predict_proba:
            ensemble = predictor.predict_proba(probe, as_pandas=False, as_multiclass=True)
            alone = predictor.predict_proba(probe, as_pandas=False, as_multiclass=True, model=members[0])
        else:
            ensemble = predictor.predict(probe, as_pandas=False)
            alone = predictor.predict(probe, as_pandas=False, model=members[0])
        if not (ensemble.shape == alone.shape and (ensemble == alone).all()):
            return None
    except Exception:  # anything unexpected (another AutoGluon version): score the best model as it is
        return None
    print(f"Scoring {best} as {members[0]}, the only model it is built on (same answers, checked)", flush=True)
    return str(members[0])


KIND = TabularKind()
