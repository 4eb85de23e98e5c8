"""What a predictor kind is, host side: the rules that differ between tabular, time-series and
multimodal predictors, as attributes and methods of one object.

Services, the hook, operators and backends ask a :class:`PredictorKind` (from
:func:`airflow_autogluon_cloud.kinds.get_kind`) instead of comparing kind names. The container
side has its own copy of the per-kind rules (``container/ag_kinds.py``), since the entry
scripts import nothing from this package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_autogluon_cloud.exceptions import InvalidParameterError


@dataclass(frozen=True)
class TransformShape:
    """How a batch transform request is put together for a kind (SageMaker's CreateTransformJob fields).

    :param split_type: ``Line`` (independent rows, any line may start a mini-batch) or ``None``
        (each input file is one request, so a series is never split).
    :param batch_strategy: ``MultiRecord`` (many lines per request) or ``SingleRecord``.
    :param content_type: what the serving script is sent.
    :param accept: what it answers.
    :param assemble_with: how answers are joined: ``Line`` or ``None``.
    """

    split_type: str
    batch_strategy: str
    content_type: str
    accept: str
    assemble_with: str


#: Rows are independent: input may be cut at any line.
ROWS = "rows"
#: Rows belong to series: every item's rows stay together in one request.
SERIES = "series"


@dataclass(frozen=True)
class PredictorKind:
    """One predictor kind. Instances live in the kind modules (``kinds/tabular.py`` ...).

    :param name: ``predictor_type`` as users write it.
    :param package: the AutoGluon package that provides the predictor.
    :param class_name: the predictor class in that package.
    :param label_key: the init argument naming the column the predictor learns.
    :param label_default: that column when the argument is not given (``None``: it is required).
    :param batch_split: :data:`ROWS` or :data:`SERIES`: how batch input may be cut.
    :param transform: the transform request's split, strategy and content types.
    :param answer_columns: what one answer row holds, for docs and errors.
    :param evaluable: whether :class:`~airflow_autogluon_cloud.services.evaluation.EvaluationService` scores it.
    :param scores_in_training_job: whether ``predict_data`` may be scored in the training job.
    :param summary_fields: the kind's own keys in ``training_summary.json``.
    :param load_accepts_version_check: whether ``predictor_class.load`` takes ``require_version_match``.
    :param load_accepts_py_version_check: whether it takes ``require_py_version_match``.
    """

    name: str
    package: str
    class_name: str
    label_key: str = "label"
    label_default: str | None = None
    batch_split: str = ROWS
    transform: TransformShape = TransformShape("Line", "MultiRecord", "text/csv", "application/jsonl", "Line")
    answer_columns: tuple[str, ...] = ("<label>",)
    evaluable: bool = False
    scores_in_training_job: bool = True
    summary_fields: tuple[str, ...] = ()
    load_accepts_version_check: bool = True
    load_accepts_py_version_check: bool = True
    #: Whether the whole training data is read and checked on the host before a job (series rules).
    checks_whole_data: bool = False
    #: Whether the kind takes a ``static_features`` table (one row per item).
    accepts_static_features: bool = False
    #: Init arguments a fit operator may give as its own parameters (``prediction_length``...).
    named_init_args: tuple[str, ...] = ()

    # training ---------------------------------------------------------------------------------

    @property
    def local_python_key(self) -> str:
        """The ``[autogluon_cloud]`` setting naming the interpreter the local backend runs this kind's
        entry scripts with (see :func:`~airflow_autogluon_cloud.settings.resolve_local_python`)."""
        return f"local_python_{self.name}"

    def local_python(self) -> str:
        """That interpreter (this one unless set); :class:`InvalidParameterError` if it is not executable."""
        from airflow_autogluon_cloud.settings import resolve_local_python

        return resolve_local_python(self.local_python_key)

    def label_of(self, init_args: dict[str, Any]) -> str | None:
        """The column the predictor learns, from its init arguments (or the kind's default)."""
        value = init_args.get(self.label_key, self.label_default)
        return str(value) if value is not None else None

    def merge_named_init_args(self, init_args: dict[str, Any], named: dict[str, Any]) -> dict[str, Any]:
        """``init_args`` with the operator's named arguments; one given twice must agree."""
        merged = dict(init_args)
        for key, value in named.items():
            if value is None:
                continue
            if key not in self.named_init_args:
                raise InvalidParameterError(key, value, f"applies to other predictor kinds, not {self.name}.")
            if key in merged and merged[key] != value:
                raise InvalidParameterError(
                    key, value, f"predictor_init_args[{key!r}] says {merged[key]!r}: give it in one place only."
                )
            merged[key] = value
        return merged

    def check_init_args(self, init_args: dict[str, Any]) -> None:
        """Refuse init arguments the container would refuse, before anything is staged."""
        if self.label_default is None and not init_args.get(self.label_key):
            raise InvalidParameterError(
                "predictor_init_args",
                init_args,
                f"set predictor_init_args[{self.label_key!r}] to the column a {self.name} predictor learns.",
            )

    def ag_args_extra(self, columns: dict[str, str] | None) -> dict[str, Any]:
        """Sections of ``ag_args.json`` beyond the common ones (none for most kinds)."""
        if columns:
            raise InvalidParameterError(
                "timeseries_columns", columns, f"id and timestamp columns apply to time series, not {self.name}."
            )
        return {}

    def required_columns(self, label: str | None, ag_args: dict[str, Any]) -> list[str]:
        """Columns the training and tuning data must hold."""
        return [label] if label else []

    def item_column(self, ag_args: dict[str, Any]) -> str | None:
        """The column naming the series a row belongs to (``None``: rows are independent)."""
        return None

    def check_training_data(self, frame: Any, parameter: str, ag_args: dict[str, Any]) -> None:
        """Checks beyond the columns' presence on the data a user handed over (default: none)."""

    def check_fit_args(self, fit_args: dict[str, Any]) -> None:
        """Refuse fit arguments that cannot work where the job runs (default: none)."""

    def side_inputs(
        self, frame: Any, parameter: str, ag_args: dict[str, Any], workdir: Any
    ) -> tuple[Any, dict[str, Any]]:
        """Files a job reads beside ``parameter``'s data (none for most kinds).

        :returns: the data to stage in place of ``frame`` (``None``: unchanged) and channel name ->
            local file to stage as that channel.
        """
        return None, {}

    def check_static_features(self, static: Any, items: Any, ag_args: dict[str, Any]) -> None:
        raise InvalidParameterError("static_features", "(given)", f"{self.name} predictors take no static features.")

    def check_predict_data(self, predict_data: Any, ag_args: dict[str, Any] | None = None) -> None:
        if predict_data is not None and not self.scores_in_training_job:
            raise InvalidParameterError(
                "predict_data", "(given)", f"scoring in the training job is not available for {self.name} predictors."
            )

    def answer_rows(self, data: Any, summary: dict[str, Any]) -> int:
        """The rows a prediction of ``data`` answers: one per input row (default)."""
        return len(data)

    def predict_data_columns(self, required: list[str]) -> list[str]:
        """The columns ``predict_data`` needs, given those of the training data (default: none: a
        row needs only what the model has features for)."""
        return []

    # batch ---------------------------------------------------------------------------------------

    def file_transform(self, test_data: Any, summary: dict[str, Any]) -> TransformShape | None:
        """The request when ``test_data`` is a folder whose every file is one request (a folder of
        images), or ``None``: the input is rows or series, staged by :attr:`batch_split`."""
        return None

    def check_batch_inputs(self, history: Any, known: Any, static: Any, summary: dict[str, Any]) -> None:
        """Checks of whole-series batch input (kinds whose ``batch_split`` is :data:`SERIES`)."""

    def write_batch_parts(
        self, history: Any, known: Any, static: Any, summary: dict[str, Any], directory: Any, min_parts: int = 1
    ) -> Any:
        """Batch input files of whole items (kinds whose ``batch_split`` is :data:`SERIES`), at least
        ``min_parts`` of them when there are as many items."""
        raise NotImplementedError(f"{self.name} batch input is rows, staged as one CSV")

    # evaluation ------------------------------------------------------------------------------

    def metric_names(self, problem_type: str | None) -> frozenset[str]:
        """Metric names evaluation accepts for a model of ``problem_type`` (empty: none known)."""
        return frozenset()

    def default_metrics(self, problem_type: str | None) -> list[str]:
        """Metrics reported beside the eval metric when none are asked for."""
        return []

    def evaluation_args(self, summary: dict[str, Any], windows: int) -> dict[str, Any]:
        """Keys ``eval_args.json`` needs beyond the common ones (none for most kinds)."""
        if windows != 1:
            raise InvalidParameterError(
                "backtest_windows", windows, f"backtests apply to time series, not {self.name}."
            )
        return {}

    # loading -----------------------------------------------------------------------------------

    def load_kwargs(self, require_version_match: bool) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"require_py_version_match": False} if self.load_accepts_py_version_check else {}
        if self.load_accepts_version_check:
            kwargs["require_version_match"] = require_version_match
        return kwargs

    def load_predictor(self, path: str, *, require_version_match: bool = True) -> Any:
        """Load a fitted predictor of this kind from ``path`` (imports AutoGluon here, not at parse time)."""
        import importlib

        try:
            module = importlib.import_module(self.package)
        except ImportError as err:
            extra = f' (pip install "airflow-provider-autogluon-cloud[{self.name}]")' if self.name != "tabular" else ""
            raise InvalidParameterError(
                "predictor_type", self.name, f"loading it needs {self.package}, which is not installed{extra}: {err}"
            ) from None
        return getattr(module, self.class_name).load(path, **self.load_kwargs(require_version_match))
