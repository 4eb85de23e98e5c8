"""The detached process behind one local training job.

``python -m airflow_autogluon_cloud.backends.local.runner <root> training <name>`` does on this
machine what SageMaker's training platform does around the AutoGluon container: it lays out
``/opt/ml`` under the job's working directory, materialises the input channels, unpacks the code
channel, runs ``train.py`` under the ``SM_*`` contract, packs ``model.tar.gz`` and
``output.tar.gz``, uploads them to the output path and records the outcome in the state database.
Its stdout and stderr (and the entry script's) are the job's log file.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from airflow_autogluon_cloud.backends.local.jobkit import (
    MaxRuntimeExceeded,
    StopRequested,
    log,
    make_storage,
    materialise,
)
from airflow_autogluon_cloud.backends.local.state import StateStore
from airflow_autogluon_cloud.backends.specs import CHANNEL_CODE, TRAIN_SCRIPT
from airflow_autogluon_cloud.kinds import JobKind
from airflow_autogluon_cloud.status import JobStatus

# Nothing here imports Airflow at module level: batch-transform workers are spawned processes
# that re-import this module (it is ``__main__``), and Airflow would add ~1.4 s to each start.

_ACTIVE = (JobStatus.IN_PROGRESS.value, JobStatus.STOPPING.value)


class Runner:
    """One job's process: reads its record, runs its body, records the outcome (a :class:`~.jobkit.JobRun`)."""

    def __init__(self, root: str, kind: str, name: str) -> None:
        self.started_at = time.time()
        self.store = StateStore(root)
        self.kind = kind
        self.name = name
        record = self.store.get(kind, name)
        if record is None:
            raise SystemExit(f"No {kind} job named {name!r} under {root}")
        self.record = record
        self.workdir = Path(record.workdir or tempfile.mkdtemp())
        self.child: subprocess.Popen[bytes] | None = None
        self.stop_requested = False

    def on_sigterm(self, signum: int, frame: object) -> None:
        self.stop_requested = True
        if self.child and self.child.poll() is None:
            self.child.terminate()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.on_sigterm)
        try:
            kind = JobKind.parse(self.kind)
            if kind is JobKind.TRAINING:
                self.run_training()
            elif kind is JobKind.EVALUATION:
                from airflow_autogluon_cloud.backends.local.evaluation import run_evaluation

                run_evaluation(self)
            else:
                from airflow_autogluon_cloud.backends.local.transform import run_transform

                run_transform(self)
        except StopRequested:
            log("Stopped on request.")
            self.finish(JobStatus.STOPPED, "Stopped by request.")
            return 0
        except MaxRuntimeExceeded as err:
            log("%s", err)
            self.finish(JobStatus.STOPPED, f"MaxRuntimeExceeded: {err}")
            return 1
        except Exception as err:
            traceback.print_exc()
            sys.stdout.flush()
            self.finish(JobStatus.FAILED, getattr(err, "failure_reason", None) or f"{type(err).__name__}: {err}")
            return 1
        return 0

    def finish(self, status: JobStatus, reason: str | None = None, **data: Any) -> None:
        data.setdefault("usage", self.usage())
        self.store.update(
            self.kind,
            self.name,
            expect_status=_ACTIVE,
            status=status.value,
            failure_reason=reason[:2000] if reason else None,
            ended_at=time.time(),
            data_updates=data or None,
        )

    def usage(self) -> dict[str, float]:
        """The job's CPU seconds (this runner and the processes it waited for: the entry script, the
        batch workers) and wall seconds so far."""
        import resource

        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
        return {"cpu_seconds": round(cpu, 3), "wall_seconds": round(time.time() - self.started_at, 3)}

    def check_stop(self) -> None:
        if self.stop_requested:
            raise StopRequested()

    def run_child(self, argv: list[str], env: dict[str, str], cwd: Path, max_runtime: int | None) -> int:
        """Run an entry script, forwarding a stop request and enforcing the maximum runtime."""
        self.check_stop()
        self.child = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + max_runtime if max_runtime else None
        while True:
            try:
                code = self.child.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if deadline and time.monotonic() > deadline:
                    self.child.terminate()
                    try:
                        self.child.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        self.child.kill()
                    raise MaxRuntimeExceeded(f"ran longer than MaxRuntimeInSeconds={max_runtime}") from None
        self.check_stop()
        return code

    # training ---------------------------------------------------------------------------------

    def run_training(self, prepare_inputs: Callable[[Path], None] | None = None) -> None:
        """The training contract around the spec's entry script (``train.py`` unless it names another).

        :param prepare_inputs: called with ``/opt/ml/input/data`` once the channels are in place.
        """
        from airflow_autogluon_cloud.archives import make_tarball, safe_extract
        from airflow_autogluon_cloud.storage import join_uri

        spec = self.record.data["spec"]
        aws = self.record.data.get("aws")
        name = self.name
        script = spec.get("entry_point") or TRAIN_SCRIPT
        label = JobKind.parse(self.kind).label
        opt_ml = self.workdir / "opt" / "ml"
        input_data = opt_ml / "input" / "data"
        config_dir = opt_ml / "input" / "config"
        model_dir = opt_ml / "model"
        output_dir = opt_ml / "output"
        output_data = output_dir / "data"
        code_dir = opt_ml / "code"
        for d in (input_data, config_dir, model_dir, output_data, code_dir):
            d.mkdir(parents=True, exist_ok=True)

        log("%s %s: preparing channels %s", label, name, ", ".join(sorted(spec["channels"])))
        for channel, uri in sorted(spec["channels"].items()):
            self.check_stop()
            materialise(uri, input_data / channel, aws)
        archives = sorted((input_data / CHANNEL_CODE).glob("*.tar.gz"))
        if not archives:
            raise FileNotFoundError("The code channel holds no sourcedir.tar.gz")
        safe_extract(archives[0], code_dir)
        if prepare_inputs is not None:
            prepare_inputs(input_data)

        hyperparameters: dict[str, str] = spec["hyperparameters"]
        (config_dir / "hyperparameters.json").write_text(json.dumps(hyperparameters))
        (config_dir / "inputdataconfig.json").write_text(
            json.dumps({c: {"TrainingInputMode": "File"} for c in spec["channels"]})
        )
        (config_dir / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))
        env = {
            **os.environ,
            **spec.get("environment", {}),
            "SM_MODEL_DIR": str(model_dir),
            "SM_OUTPUT_DATA_DIR": str(output_data),
            "SM_OUTPUT_DIR": str(output_dir),
            "SM_INPUT_DIR": str(opt_ml / "input"),
            "SM_INPUT_CONFIG_DIR": str(config_dir),
            "SM_MODULE_DIR": str(code_dir),
            "SM_CHANNELS": json.dumps(sorted(spec["channels"])),
            "SM_HPS": json.dumps(hyperparameters),
            "SM_NUM_GPUS": "0",
            "SM_NUM_CPUS": str(os.cpu_count() or 1),
            "SM_CURRENT_HOST": "algo-1",
            "SM_HOSTS": json.dumps(["algo-1"]),
            "PYTHONUNBUFFERED": "1",
        }
        for channel in spec["channels"]:
            env[f"SM_CHANNEL_{channel.upper()}"] = str(input_data / channel)
        # Script mode: hyperparameters become ``--key value`` arguments, as the toolkit passes them.
        argv = [spec.get("interpreter") or sys.executable, str(code_dir / script)]
        for key, value in sorted(hyperparameters.items()):
            if not key.startswith("sagemaker_"):
                argv += [f"--{key}", value]
        log("Running %s", script)
        code = self.run_child(argv, env, code_dir, spec.get("max_runtime"))
        if code != 0:
            failure = output_dir / "failure"
            reason = failure.read_text().strip() if failure.exists() else ""
            err = RuntimeError(f"AlgorithmError: {script} exited with code {code}")
            err.failure_reason = f"AlgorithmError: {reason}" if reason else str(err)  # type: ignore[attr-defined]
            raise err

        artifact_prefix = join_uri(spec["output_path"], name, "output")
        storage = make_storage(artifact_prefix, aws)
        packed = self.workdir / "packed"
        log("Packing model.tar.gz and output.tar.gz")
        make_tarball(model_dir, packed / "model.tar.gz")
        make_tarball(output_data, packed / "output.tar.gz")
        model_uri = join_uri(artifact_prefix, "model.tar.gz")
        output_uri = join_uri(artifact_prefix, "output.tar.gz")
        storage.upload_file(packed / "output.tar.gz", output_uri)
        storage.upload_file(packed / "model.tar.gz", model_uri)
        log("Uploaded %s", model_uri)
        # The artifacts are uploaded; the inputs and unpacked model are no longer needed here.
        shutil.rmtree(input_data, ignore_errors=True)
        shutil.rmtree(packed, ignore_errors=True)
        shutil.rmtree(model_dir, ignore_errors=True)
        self.finish(JobStatus.COMPLETED, None, artifact_uri=model_uri, secondary_uri=output_uri)
        log("%s %s completed.", label, name)


def main(argv: list[str]) -> int:
    root, kind, name = argv
    return Runner(root, kind, name).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
