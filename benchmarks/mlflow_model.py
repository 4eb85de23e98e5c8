"""The ``mlflow.pyfunc`` wrapper the endpoint benchmark serves with ``mlflow models serve``.

Kept in its own module so MLflow pickles the class by reference and the server imports it from
the model's ``code/`` directory.
"""

from __future__ import annotations

import mlflow.pyfunc


class AutoGluonTabularModel(mlflow.pyfunc.PythonModel):
    # No type hints on the methods: MLflow would try to derive a model signature from them.

    def load_context(self, context):
        from autogluon.tabular import TabularPredictor

        self.predictor = TabularPredictor.load(context.artifacts["predictor"], require_py_version_match=False)
        self.predictor.persist()

    def predict(self, context, model_input, params=None):
        return self.predictor.predict(model_input)
