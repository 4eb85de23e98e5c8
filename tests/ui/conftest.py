"""A real ``airflow api-server`` with the provider's plugin loaded, for the UI tests.

SimpleAuthManager with two users: ``admin`` (may edit DAGs) and ``viewer`` (may read them). The
server shares the session's Airflow database and local-backend root, so what a test registers
through the hook is what the page shows. One server serves the module (or the session, for the
browser tests); it runs in its own process group and is stopped in the fixture's finaliser.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.deployment.conftest import free_port

GROUP = "ui-churn"
PASSWORDS = {"admin": "admin-pass-4ui", "viewer": "viewer-pass-4ui"}


@dataclass
class ApiServer:
    url: str
    log: Path

    def token(self, user: str) -> str:
        body = json.dumps({"username": user, "password": PASSWORDS[user]}).encode()
        request = urllib.request.Request(
            f"{self.url}/auth/token", data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return str(json.loads(response.read())["access_token"])

    def request(
        self,
        path: str,
        *,
        method: str = "GET",
        token: str | None = None,
        cookie: str | None = None,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str, dict[str, str]]:
        """``(status, body, headers)`` of one request, redirects not followed."""
        from urllib.parse import urlencode

        all_headers = dict(headers or {})
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        if cookie:
            all_headers["Cookie"] = f"_token={cookie}"
        data = None
        if form is not None:
            data = urlencode(form).encode()
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers=all_headers)
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(request, timeout=120) as response:
                return response.status, response.read().decode(), dict(response.headers)
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(), dict(err.headers)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def start_api_server(home: Path) -> tuple[subprocess.Popen[bytes], ApiServer]:
    port = free_port()
    passwords = home / "simple_auth_passwords.json"
    passwords.write_text(json.dumps(PASSWORDS))
    env = {
        **os.environ,
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API_AUTH__JWT_SECRET": "agc-ui-tests-secret-0123456789abcdef",
        # Airflow 3.1's token issuer is None by default, which the pinned PyJWT refuses when signing.
        "AIRFLOW__API_AUTH__JWT_ISSUER": "airflow-autogluon-cloud-tests",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
    }
    log = home / "ui-api-server.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "airflow", "api-server", "--port", str(port), "--workers", "1"],
            env=env,
            cwd=home,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = ApiServer(f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 240
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"api-server exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}/api/v2/monitor/health", timeout=5):
                return proc, server
        except (urllib.error.URLError, ConnectionError, OSError):
            if time.monotonic() > deadline:
                stop(proc)
                raise AssertionError(f"api-server did not answer in 240 s:\n{log.read_text()[-4000:]}") from None
            time.sleep(1)


def stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@pytest.fixture(scope="session")
def api_server(airflow_db: Path) -> Iterator[ApiServer]:
    proc, server = start_api_server(airflow_db)
    try:
        yield server
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def registered_group(trained_job: dict) -> dict[str, Any]:
    """Three versions of one model in ``GROUP`` (one approved with a gate record, one whose
    description holds markup), registered through the hook as the operators do."""
    from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

    hook = AutoGluonCloudHook(aws_conn_id=None)
    uri = trained_job["model_artifact_uri"]
    framework = trained_job.get("framework_version")
    made = []
    for index, (metric, description) in enumerate(
        [(0.71, "first model"), (0.74, "<script>alert('x')</script> challenger"), (0.69, "third model")], start=1
    ):
        made.append(
            hook.registry.register(
                group=GROUP,
                model_uri=uri,
                # the first names the real shared fit, so its version records that job's usage
                training_job=trained_job["job_name"] if index == 1 else f"ui-fit-{index}",
                metrics={"roc_auc": metric},
                dataset="/data/holdout.csv",
                description=description,
                framework_version=framework,
                registered_by=f"airflow:ag_retrain_and_score/manual__2026-01-0{index}/register",
            )
        )
    gate = "challenger=0.71 champion=0.7 improvement=0.01 interval=[+0.0040, +0.0160] p_value=0.01 passed"
    hook.registry.set_approval(
        GROUP,
        made[0].version,
        "Approved",
        "airflow:ag_retrain_and_score/manual__2026-01-01/promote",
        "improved",
        audit={"metric:roc_auc": gate},
    )
    return {"versions": [v.version for v in made], "hook": hook, "usage": made[0].usage}
