"""Local endpoints: detached HTTP server processes, one per endpoint, recorded in the state store.

Lifecycle as on SageMaker: ``Creating`` -> ``InService``; an update starts a second server for
the new configuration and switches the endpoint to it only once it answers ``/ping`` (requests
keep going to the old server until then), then stops the old one. Transitions are completed by
whichever process looks next, so a worker killed mid-deploy leaves nothing half-done: the next
describe finishes the switch or records the failure.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from airflow_autogluon_cloud.backends.local import endpoint_http, processes
from airflow_autogluon_cloud.backends.local.jobkit import fetch_model
from airflow_autogluon_cloud.backends.local.state import (
    ENDPOINT,
    ENDPOINT_CONFIG,
    MODEL,
    AlreadyExistsError,
    StateStore,
)
from airflow_autogluon_cloud.backends.specs import EndpointDescription, InvocationResult
from airflow_autogluon_cloud.exceptions import (
    AutoGluonCloudError,
    EndpointError,
    EndpointInvocationError,
    ResourceNotFoundError,
)
from airflow_autogluon_cloud.status import EndpointStatus

log = logging.getLogger(__name__)
READY_TIMEOUT_SECONDS = 300.0
#: How long a pending server may go without a recorded PID before it counts as never started.
_SPAWN_GRACE_SECONDS = 60.0
_CREATING, _UPDATING, _IN_SERVICE, _FAILED = "Creating", "Updating", "InService", "Failed"
_DELETING = "Deleting"


def _pending_dead(pending: dict[str, Any]) -> bool:
    if pending.get("pid"):
        return not processes.is_alive(pending["pid"], pending["pid_start"])
    # Spawned by a caller that died before recording the PID: the ready file would name it.
    return (
        time.time() - pending.get("prepared_at", 0) > _SPAWN_GRACE_SECONDS and not Path(pending["ready_file"]).exists()
    )


def _this_process() -> dict[str, Any]:
    """This process, recorded as the one preparing an endpoint's server: a retry that finds the
    endpoint unprepared can then tell a preparer that died from one still at work."""
    return {"pid": os.getpid(), "pid_start": processes.process_start_time(os.getpid())}


def _preparer_gone(record: Any) -> bool:
    """Whether nobody is preparing the server of a Creating or Updating endpoint that has none yet."""
    preparer = record.data.get("preparer") or {}
    if preparer.get("pid") and not processes.is_alive(preparer["pid"], preparer.get("pid_start")):
        return True  # it died (a worker killed mid-deploy): no need to wait out the grace period
    return time.time() - record.updated_at > _SPAWN_GRACE_SECONDS


def _never_started(pending: dict[str, Any]) -> bool:
    """A prepared server whose process was never started (no PID, no ready file, grace over)."""
    return (
        not pending.get("pid")
        and not pending.get("respawned")
        and bool(pending.get("dir"))
        and (Path(pending["dir"]) / "model").is_dir()
        and _pending_dead(pending)
    )


class LocalEndpoints:
    """The endpoints of one local backend.

    :param store: the backend's state store.
    :param root: the backend's root directory (endpoint directories go under ``<root>/endpoint``).
    :param aws: the AWS settings (as a dict) used to download models stored on S3.
    :param host: the address servers bind to (loopback unless configured otherwise).
    """

    def __init__(self, store: StateStore, root: Path, aws: dict[str, Any] | None, host: str = "127.0.0.1") -> None:
        self.store = store
        self.root = root
        self.aws = aws
        self.host = host

    def directory(self, name: str) -> Path:
        return self.root / ENDPOINT / name

    def log_path(self, name: str) -> Path:
        return self.directory(name) / "endpoint.log"

    def log_tail(self, name: str, lines: int = 15) -> str:
        """The last lines of ``endpoint.log``, read from its end; each line cut short (what a client sent is in it)."""
        return endpoint_http.read_tail(self.log_path(name), lines)

    def url(self, name: str) -> str | None:
        record = self.store.get(ENDPOINT, name)
        return record.data.get("url") if record else None

    # lifecycle -------------------------------------------------------------------------------

    def create(self, name: str, config_name: str, tags: dict[str, str]) -> None:
        self._model_uri(config_name)  # fail before recording anything if the config is unknown
        try:
            self.store.insert(
                ENDPOINT, name, _CREATING, data={"config_name": config_name, "preparer": _this_process()}, tags=tags
            )
        except AlreadyExistsError:
            raise AutoGluonCloudError(f"Endpoint {name!r} already exists on the local backend.") from None
        try:
            self._spawn_server(name, self._prepare_server(name, config_name))
        except Exception as err:
            self.store.update(ENDPOINT, name, status=_FAILED, failure_reason=f"could not start: {err}")
            raise EndpointError(name, f"could not start the endpoint server: {err}") from err
        self._complete(name, wait=True)

    def update(self, name: str, config_name: str) -> None:
        record = self.store.get(ENDPOINT, name)
        if record is None:
            raise ResourceNotFoundError("Endpoint", name, "local")
        if not self.store.update(
            ENDPOINT, name, expect_status=(_IN_SERVICE,), status=_UPDATING, data_updates={"preparer": _this_process()}
        ):
            raise EndpointError(name, f"can only be updated while InService (it is {record.status})", record.status)
        try:
            self._spawn_server(name, self._prepare_server(name, config_name))
        except Exception as err:
            self.store.update(
                ENDPOINT,
                name,
                status=_IN_SERVICE,
                failure_reason=f"update to {config_name} failed: {err}",
                data_updates={"pending": None},
            )
            raise
        self._complete(name, wait=True)

    def describe(self, name: str) -> EndpointDescription:
        record = self.store.get(ENDPOINT, name)
        if record is None:
            raise ResourceNotFoundError("Endpoint", name, "local")
        if record.status in (_CREATING, _UPDATING):
            self._complete(name, wait=False)
        record = self.store.get(ENDPOINT, name)
        if record is None:
            raise ResourceNotFoundError("Endpoint", name, "local")
        alive = processes.is_alive(record.pid, record.pid_start)
        resting = self._idle_stopped(record) or record.data.get("waking")  # serverless, scaled to zero
        if record.status == _IN_SERVICE and not alive and not resting:
            reason = f"the endpoint process (pid {record.pid}) is not running. Log:\n{self.log_tail(name)}"
            self.store.update(ENDPOINT, name, expect_status=(_IN_SERVICE,), status=_FAILED, failure_reason=reason)
            record = self.store.get(ENDPOINT, name)
            assert record is not None
        return EndpointDescription(
            name=name,
            status=EndpointStatus.parse(record.status),
            config_name=record.data.get("config_name"),
            failure_reason=record.failure_reason,
            created_at=record.created_at,
            url=record.data.get("url"),
            tags=record.tags,
        )

    def list(self) -> list[EndpointDescription]:
        return [self.describe(r.name) for r in self.store.list(ENDPOINT)]

    def delete(self, name: str) -> None:
        record = self.store.get(ENDPOINT, name)
        if record is None:
            return
        pending = record.data.get("pending") or {}
        pending_pid = pending.get("pid")
        ready = Path(pending["ready_file"]) if pending.get("ready_file") else None
        if not pending_pid and ready is not None and ready.exists():
            pending_pid = json.loads(ready.read_text()).get("pid")  # spawned, but its PID was never recorded
        # Requests in flight then fail saying the endpoint was deleted, not that it broke.
        self.store.update(ENDPOINT, name, status=_DELETING)
        processes.terminate(pending_pid, pending.get("pid_start"), grace_seconds=5)
        processes.terminate(record.pid, record.pid_start, grace_seconds=5)
        self.store.delete(ENDPOINT, name)
        shutil.rmtree(self.directory(name), ignore_errors=True)

    def invoke(
        self, name: str, body: bytes, content_type: str, accept: str, custom_attributes: str | None = None
    ) -> InvocationResult:
        desc = self.describe(name)
        if desc.status not in (EndpointStatus.IN_SERVICE, EndpointStatus.UPDATING) or not desc.url:
            raise EndpointError(
                name,
                f"is {desc.status.value}, not InService: {desc.failure_reason or 'no reason given'}",
                desc.status.value,
            )
        url = self._wake_if_idle(name) or desc.url
        try:
            status, data, out_type = endpoint_http.post_retrying_throttles(
                url, body, content_type, accept, custom_attributes
            )
        except OSError:
            record = self.store.get(ENDPOINT, name)
            if record is None or record.status == _DELETING:
                raise EndpointError(
                    name, "was deleted while this request was in flight; nothing answered it.", _DELETING
                ) from None
            # An update may have just switched servers, or an idle serverless server stopped: look again once.
            desc = self.describe(name)
            woken = self._wake_if_idle(name) if desc.status == EndpointStatus.IN_SERVICE else None
            if woken or (desc.url and desc.url != url and desc.status == EndpointStatus.IN_SERVICE):
                status, data, out_type = endpoint_http.post(
                    woken or str(desc.url), body, content_type, accept, custom_attributes
                )
            else:
                raise EndpointError(
                    name,
                    "is not reachable: its server process is not running. Redeploy it, or delete it.",
                    desc.status.value,
                ) from None
        if status >= 400:
            try:
                message = str(json.loads(data).get("message", ""))
            except (ValueError, AttributeError):
                message = data.decode(errors="replace")
            message = message if len(message) <= 2000 else message[:2000] + "...[cut]"
            raise EndpointInvocationError(name, status, message, log_tail=self.log_tail(name, 10))
        return InvocationResult(data, out_type)

    # serverless: stop when idle, start again on the next call ------------------------------------

    @staticmethod
    def _idle_file(record: Any) -> Path | None:
        return Path(record.data["dir"]) / endpoint_http.IDLE_FILE if record.data.get("dir") else None

    def _idle_stopped(self, record: Any) -> bool:
        """Whether the server stopped itself for being idle (then the endpoint is still in service)."""
        marker = self._idle_file(record)
        if marker is None or not marker.exists():
            return False
        try:
            return int(json.loads(marker.read_text())["pid"]) == record.pid
        except (ValueError, KeyError, TypeError):
            return False

    def _wake_if_idle(self, name: str) -> str | None:
        """Start an idle-stopped serverless server again (a cold start); return its URL, or ``None``.

        It asks for its old port, so a client holding the URL reaches it again. One caller starts
        it (claimed in the state store); the others wait for it to answer.
        """
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while True:
            record = self.store.get(ENDPOINT, name)
            if record is None or record.status != _IN_SERVICE:
                return None
            waking = record.data.get("waking")
            if not waking and not self._idle_stopped(record):
                return None  # running (or failed, which describe reports)
            if waking and waking.get("pid"):
                ready = endpoint_http.ready_server(waking)
                if ready is not None:
                    url, pid = ready
                    self.store.update(
                        ENDPOINT,
                        name,
                        expect_data={"waking": waking},
                        pid=pid,
                        pid_start=waking["pid_start"],
                        data_updates={"url": url, "waking": None},
                    )
                    return url
                if not processes.is_alive(waking["pid"], waking["pid_start"]) or time.monotonic() > deadline:
                    self.store.update(ENDPOINT, name, expect_data={"waking": waking}, data_updates={"waking": None})
                    raise EndpointError(name, f"could not start again after an idle stop. Log:\n{self.log_tail(name)}")
            elif not waking or time.time() - waking["at"] > _SPAWN_GRACE_SECONDS:
                claim: dict[str, Any] = {
                    "at": time.time(),
                    "pid": None,
                    "pid_start": None,
                    "ready_file": str(Path(record.data["dir"]) / "ready.json"),
                }
                if self.store.update(ENDPOINT, name, expect_data={"waking": waking}, data_updates={"waking": claim}):
                    log.info("Endpoint %s: starting its serverless server again after an idle stop", name)
                    for stale in (Path(claim["ready_file"]), self._idle_file(record)):
                        if stale is not None:
                            stale.unlink(missing_ok=True)
                    port = int(str(record.data["url"]).rsplit(":", 1)[1])
                    pending = {"config_name": record.data["config_name"], "dir": record.data["dir"], **claim}
                    pid, start = processes.spawn_detached(
                        self._server_argv(name, pending, port),
                        cwd=record.data["dir"],
                        env=endpoint_http.server_env(),
                        log_path=self.log_path(name),
                    )
                    self.store.update(
                        ENDPOINT,
                        name,
                        expect_data={"waking": claim},
                        data_updates={"waking": {**claim, "pid": pid, "pid_start": start}},
                    )
                continue
            time.sleep(0.1)

    # servers ---------------------------------------------------------------------------------

    def _model_uri(self, config_name: str) -> str:
        config = self.store.get(ENDPOINT_CONFIG, config_name)
        if config is None:
            raise ResourceNotFoundError("Endpoint configuration", config_name, "local")
        model = self.store.get(MODEL, config.data["model_name"])
        if model is None:
            raise ResourceNotFoundError("Model", config.data["model_name"], "local")
        return str(model.data["model_data_uri"])

    def _prepare_server(self, name: str, config_name: str) -> dict[str, Any]:
        """Unpack the model for a new server; return its pending record (no process yet)."""
        uri = self._model_uri(config_name)
        workdir = self.directory(name) / config_name
        if workdir.exists():
            shutil.rmtree(workdir)
        workdir.mkdir(parents=True)
        fetch_model(uri, workdir / "model", self.aws)
        config = self.store.get(ENDPOINT_CONFIG, config_name)
        if config is not None and config.data.get("data_capture"):  # read by the server (endpoint_capture.py)
            (workdir / "data_capture.json").write_text(json.dumps(config.data["data_capture"]))
        return {
            "config_name": config_name,
            "pid": None,
            "pid_start": None,
            "ready_file": str(workdir / "ready.json"),
            "dir": str(workdir),
            "prepared_at": time.time(),
        }

    def _spawn_server(self, name: str, pending: dict[str, Any]) -> None:
        """Start the server recorded in ``pending`` and record its PID.

        The pending record is stored before the process starts, so a caller killed in between
        leaves a server that can still be found: it writes its PID into its ready file.
        """
        self.store.update(ENDPOINT, name, data_updates={"pending": pending})
        argv = self._server_argv(name, pending)
        pid, start = processes.spawn_detached(
            argv, cwd=pending["dir"], env=endpoint_http.server_env(), log_path=self.log_path(name)
        )
        self.store.update(ENDPOINT, name, data_updates={"pending": {**pending, "pid": pid, "pid_start": start}})

    def _server_argv(self, name: str, pending: dict[str, Any], port: int = 0) -> Any:
        """The server command for the configuration ``pending`` names (serverless limits included)."""
        config = self.store.get(ENDPOINT_CONFIG, pending["config_name"])
        serverless = (config.data.get("serverless") if config else None) or {}
        workers = 1 if serverless or config is None else int(config.data.get("instance_count") or 1)
        dirs = (pending["dir"], pending["ready_file"])
        log_file = str(self.log_path(name))
        model = self.store.get(MODEL, config.data["model_name"]) if config is not None else None
        python = (model.data.get("interpreter") if model is not None else None) or None
        return endpoint_http.server_argv(name, *dirs, self.host, port, serverless, workers, log_file, python)

    def _claim_respawn(self, name: str, pending: dict[str, Any]) -> bool:
        return self.store.update(
            ENDPOINT,
            name,
            expect_status=(_CREATING, _UPDATING),
            expect_data={"pending": pending},
            data_updates={"pending": {**pending, "respawned": True, "prepared_at": time.time()}},
        )

    def _complete(self, name: str, wait: bool) -> None:
        """Finish a pending create or update: switch to the new server once it answers, or fail."""
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while True:
            record = self.store.get(ENDPOINT, name)
            if record is None or record.status not in (_CREATING, _UPDATING):
                return
            pending = record.data.get("pending")
            if not pending:
                if not _preparer_gone(record):
                    if wait:
                        time.sleep(0.2)
                        continue
                    return
                if record.status == _CREATING:
                    # The deploy that created it died before starting a server (a worker killed
                    # mid-deploy): whoever claims it first prepares and starts the server now.
                    self._take_over_creation(name, record)
                    continue
                # An update that died before preparing its server: fail it; the old server serves on.
                pending = {
                    "config_name": record.data.get("config_name"),
                    "pid": None,
                    "pid_start": None,
                    "ready_file": "/nonexistent",
                    "dir": None,
                    "prepared_at": 0,
                }
            ready = endpoint_http.ready_server(pending)
            if ready is not None:
                self._switch(name, record, pending, *ready)
                return
            timed_out = time.monotonic() > deadline
            if not timed_out and _never_started(pending) and self._claim_respawn(name, pending):
                # The caller that prepared this server died before starting it (a worker killed
                # mid-deploy). The model is unpacked, so start the server now, once, instead of
                # failing the deploy; whichever process claims it first does so.
                log.info("Endpoint %s: starting the server an interrupted deploy prepared", name)
                self._spawn_server(name, {**pending, "respawned": True, "prepared_at": time.time()})
                continue
            if _pending_dead(pending) or timed_out:
                self._fail_pending(name, record, pending, timed_out, wait)
                return
            if not wait:
                return
            time.sleep(0.1)

    def _take_over_creation(self, name: str, record: Any) -> None:
        """Prepare and start the server of a Creating endpoint whose preparer is gone, if this
        process is the first to claim it (a failure to start marks the endpoint Failed)."""
        claimed = self.store.update(
            ENDPOINT,
            name,
            expect_status=(_CREATING,),
            expect_data={"pending": None, "preparer": record.data.get("preparer")},
            data_updates={"preparer": _this_process()},
        )
        if not claimed:
            return
        log.info("Endpoint %s: the deploy that created it stopped before starting its server; starting it", name)
        try:
            self._spawn_server(name, self._prepare_server(name, record.data["config_name"]))
        except Exception as err:
            self.store.update(ENDPOINT, name, status=_FAILED, failure_reason=f"could not start: {err}")

    def _switch(self, name: str, record: Any, pending: dict[str, Any], url: str, pid: int) -> None:
        """The pending server answers: serve from it, then stop the one it replaces."""
        switched = self.store.update(
            ENDPOINT,
            name,
            expect_status=(_CREATING, _UPDATING),
            status=_IN_SERVICE,
            failure_reason=None,
            pid=pid,
            pid_start=pending.get("pid_start") or processes.process_start_time(pid),
            data_updates={"config_name": pending["config_name"], "url": url, "dir": pending["dir"], "pending": None},
        )
        if switched and record.status == _UPDATING:
            # Only now that the new server answers is the old one stopped.
            processes.terminate(record.pid, record.pid_start)
            old_dir = record.data.get("dir")
            if old_dir and old_dir != pending["dir"]:
                shutil.rmtree(old_dir, ignore_errors=True)

    def _fail_pending(self, name: str, record: Any, pending: dict[str, Any], timed_out: bool, wait: bool) -> None:
        """The pending server died or never answered: a create fails, an update keeps the old server."""
        processes.terminate(pending["pid"], pending["pid_start"], grace_seconds=2)
        why = "did not answer /ping in time" if timed_out else "exited before it was ready"
        reason = f"the endpoint server for {pending['config_name']} {why}. Log:\n{self.log_tail(name)}"
        if record.status == _UPDATING:  # the old server keeps serving
            reason = f"update to {pending['config_name']} failed: {reason}"
        self.store.update(
            ENDPOINT,
            name,
            expect_status=(record.status,),
            status=_FAILED if record.status == _CREATING else _IN_SERVICE,
            failure_reason=reason,
            data_updates={"pending": None},
        )
        if wait:
            raise EndpointError(name, reason, record.status)
