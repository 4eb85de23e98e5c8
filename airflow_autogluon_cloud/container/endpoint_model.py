"""The model behind the local endpoint: loading it with the serving script, and calling it.

Beside ``local_endpoint.py`` (which imports it): ``model_fn`` once per process, then each request
through ``transform_fn``, or several at once through the micro-batcher. Standalone: imports
nothing from the Airflow provider.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import inspect
import json
import queue
import sys
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any


def _predictor_package(predictor_type: Any) -> str | None:
    """The kind's AutoGluon package, from the predictor-kinds table beside this script (ag_kinds.py).

    Loaded under a private name: the model's own ``code/`` copy stays the one serve.py imports.
    """
    spec = importlib.util.spec_from_file_location("_ag_kinds_table", Path(__file__).resolve().parent / "ag_kinds.py")
    if spec is None or spec.loader is None:
        return None
    table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(table)
    return table.package_of(predictor_type)


def import_predictor_package(model_dir: str, summary_text: str | None = None) -> None:
    """Import the model's AutoGluon package (named in its ``training_summary.json``) ahead of
    ``model_fn``, which would import it anyway.

    :param summary_text: that file's text, when already read (else it is read from ``model_dir``).
    """
    try:
        if summary_text is None:
            summary_text = (Path(model_dir) / "training_summary.json").read_text(encoding="utf-8")
        summary = json.loads(summary_text)
    except (OSError, ValueError):
        summary = {}
    if not isinstance(summary, dict):
        summary = {}
    package = _predictor_package(summary.get("predictor_type"))
    if package:
        try:
            importlib.import_module(package)
        except ImportError:
            pass  # model_fn reports what is missing


def load_handler(model_dir: str, program: str) -> tuple[Any, Any]:
    """The serving script and its ``model_fn(model_dir)``, in a process that serves nothing else.

    What is imported, then the model, lives as long as the process, so each is moved out of the
    garbage collector's sight (``gc.freeze``): AutoGluon's ``persist()`` runs a full collection per
    model it sizes (~0.1 s each with AutoGluon imported, most of a small model's load time), and
    neither those nor any later collection walks them again; forked workers leave those pages shared.
    """
    code_dir = Path(model_dir) / "code"
    sys.path.insert(0, str(code_dir))
    spec = importlib.util.spec_from_file_location("serve", code_dir / program)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"No serving script {program} in {code_dir}")
    import_predictor_package(model_dir)
    gc.freeze()
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.model_fn(model_dir)
    gc.collect()  # what loading left behind (only what is not frozen is walked: milliseconds)
    gc.freeze()
    return module, model


class MicroBatcher:
    """Coalesces concurrent requests into one model call.

    A request that finds the model idle and nobody waiting is scored at once on its own thread
    (no hand-over cost). Otherwise it queues; one thread takes everything queued (never waiting
    for more), scores it with the serving script's ``predict_many`` and hands each request its
    own answer. The model is called by one thread at a time either way.
    """

    def __init__(self, module: Any, model: Any, max_rows: int = 20_000) -> None:
        self.module = module
        self.model = model
        self.max_rows = max_rows
        self._model_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._waiting = 0  # queued requests not yet answered; while any wait, nobody jumps the queue
        self._queue: queue.SimpleQueue[tuple[Any, Future[Any]]] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="micro-batcher", daemon=True).start()

    def submit(self, frame: Any) -> Any:
        """Score ``frame`` (with whatever else is waiting); return its answer or raise its error."""
        with self._state_lock:
            inline = self._waiting == 0 and self._model_lock.acquire(blocking=False)
            if not inline:
                self._waiting += 1
        if inline:
            try:
                answer = self.module.predict_many(self.model, [frame])[0]
            finally:
                self._model_lock.release()
        else:
            future: Future[Any] = Future()
            self._queue.put((frame, future))
            answer = future.result()
        if isinstance(answer, Exception):
            raise answer
        return answer

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            with self._model_lock:
                rows = len(batch[0][0])
                while rows < self.max_rows:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    batch.append(item)
                    rows += len(item[0])
                try:
                    answers = self.module.predict_many(self.model, [frame for frame, _ in batch])
                except Exception as err:  # never leave a request waiting
                    answers = [err] * len(batch)
            with self._state_lock:
                self._waiting -= len(batch)
            for (_, future), answer in zip(batch, answers, strict=True):
                future.set_result(answer)


def batcher_for(module: Any, model: Any) -> MicroBatcher | None:
    # Only serving scripts that split a request into prepare/predict_many/encode can be batched;
    # any other script is called through transform_fn, one request at a time.
    if all(callable(getattr(module, name, None)) for name in ("prepare", "predict_many", "encode")):
        return MicroBatcher(module, model)
    return None


class RequestContext:
    """The part of the model server's request context a serving script reads: request headers."""

    def __init__(self, headers: Any) -> None:
        self.headers = headers

    def get_request_header(self, idx: int, key: str) -> str | None:
        return self.headers.get(key)


def wants_context(module: Any) -> bool:
    """Whether ``transform_fn`` takes the request context (a fifth argument), as the toolkit checks."""
    try:
        return len(inspect.signature(module.transform_fn).parameters) >= 5
    except (TypeError, ValueError):
        return False
