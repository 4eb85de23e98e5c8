"""The FastAPI app behind ``/autogluon``: server-rendered HTML (jinja2, autoescaped), no JavaScript.

Reads go through the hook's services (:mod:`.pages`), on whichever backend the provider is set
to; a hook is made per request, as a task would. Blocking calls run in FastAPI's thread pool.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from airflow_autogluon_cloud.backends.specs import APPROVED, REJECTED
from airflow_autogluon_cloud.exceptions import AutoGluonCloudError, InvalidParameterError, ResourceNotFoundError
from airflow_autogluon_cloud.ui import URL_PREFIX, pages
from airflow_autogluon_cloud.ui.security import Editor, Viewer, can_edit, check_form_origin, csrf_token

_TEMPLATES = Path(__file__).parent / "templates"
_ACTIONS = {"approve": APPROVED, "reject": REJECTED}


def _hook() -> Any:
    from airflow_autogluon_cloud.hooks.autogluon_cloud import AutoGluonCloudHook

    return AutoGluonCloudHook()


def _when(epoch: float | None) -> str:
    if not epoch:
        return ""
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h {rest // 60:02d}m" if hours else f"{rest // 60}m {rest % 60:02d}s"


def _number(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value or "")


def template_environment() -> Environment:
    """jinja2 with autoescaping on for every template: registry text is shown as text."""
    environment = Environment(
        loader=FileSystemLoader(str(_TEMPLATES)),
        autoescape=select_autoescape(["html", "svg"], default_for_string=True, default=True),
    )
    environment.filters.update(when=_when, duration=_duration, number=_number, urlpart=lambda v: quote(str(v), safe=""))
    return environment


def create_app() -> FastAPI:
    environment = template_environment()
    app = FastAPI(title="AutoGluon", docs_url=None, redoc_url=None, openapi_url=None)

    def render(request: Request, template: str, user: Any, **values: Any) -> HTMLResponse:
        base = request.scope.get("root_path", "").rstrip("/") or URL_PREFIX
        page = environment.get_template(template).render(
            base=base,
            airflow_base=base[: -len(URL_PREFIX)] if base.endswith(URL_PREFIX) else "",
            user=user.get_name(),
            editable=can_edit(user),
            csrf_token=csrf_token(request),
            message=request.query_params.get("message", ""),
            **values,
        )
        return HTMLResponse(page)

    @app.get("/", response_class=HTMLResponse)
    def registry(request: Request, user: Viewer) -> HTMLResponse:
        return render(request, "registry.html", user, groups=pages.registry(_hook()), view="registry")

    @app.get("/registry/{group}", response_class=HTMLResponse)
    def registry_group(group: str, request: Request, user: Viewer) -> HTMLResponse:
        return render(request, "registry.html", user, groups=pages.registry(_hook(), group), view="registry")

    @app.get("/evaluations", response_class=HTMLResponse)
    def evaluations(request: Request, user: Viewer) -> HTMLResponse:
        return render(request, "evaluations.html", user, jobs=pages.evaluations(_hook()), view="evaluations")

    @app.get("/evaluations/{job_name}", response_class=HTMLResponse)
    def evaluation(job_name: str, request: Request, user: Viewer) -> HTMLResponse:
        try:
            found = pages.evaluation(_hook(), job_name)
        except ResourceNotFoundError:
            raise HTTPException(404, f"No evaluation job {job_name!r}") from None
        return render(request, "evaluation.html", user, job_name=job_name, view="evaluations", **found)

    @app.get("/endpoints", response_class=HTMLResponse)
    def endpoints(request: Request, user: Viewer) -> HTMLResponse:
        hook = _hook()
        rows = pages.endpoints(hook)
        return render(
            request,
            "endpoints.html",
            user,
            endpoints=rows,
            backend=hook.backend_name,
            window_seconds=pages.INVOCATIONS_WINDOW,
            view="endpoints",
        )

    @app.get("/jobs", response_class=HTMLResponse)
    def jobs(request: Request, user: Viewer) -> HTMLResponse:
        return render(request, "jobs.html", user, jobs=pages.jobs(_hook()), view="jobs")

    async def form_of(request: Request) -> dict[str, str]:
        body = (await request.body()).decode("utf-8", "replace")
        form = {key: values[-1] for key, values in parse_qs(body, keep_blank_values=True).items()}
        check_form_origin(request, form)
        return form

    def done(request: Request, group: str, message: str) -> RedirectResponse:
        base = request.scope.get("root_path", "").rstrip("/") or URL_PREFIX
        target = f"{base}/registry/{quote(group, safe='')}?message={quote(message, safe='')}"
        return RedirectResponse(target, status_code=303)

    @app.post("/registry/{group}/versions/{version}/{action}")
    async def set_status(group: str, version: int, action: str, request: Request, user: Editor) -> Any:
        if action not in _ACTIONS:
            raise HTTPException(404, f"No action {action!r}")
        form = await form_of(request)
        who = f"airflow-ui:{user.get_name()}"
        try:
            await run_in_threadpool(
                pages.set_status, _hook(), group, version, _ACTIONS[action], who, form.get("reason", "")
            )
        except ResourceNotFoundError:
            raise HTTPException(404, f"No version {version} in {group!r}") from None
        except InvalidParameterError as err:
            raise HTTPException(400, str(err)) from None
        return done(request, group, f"Version {version} is now {_ACTIONS[action]}")

    @app.post("/registry/{group}/rollback")
    async def rollback(group: str, request: Request, user: Editor) -> Any:
        form = await form_of(request)
        try:
            who = f"airflow-ui:{user.get_name()}"
            now = await run_in_threadpool(pages.roll_back, _hook(), group, who, form.get("reason", ""))
        except (InvalidParameterError, AutoGluonCloudError) as err:
            raise HTTPException(400, str(err)) from None
        return done(request, group, f"Rolled back: version {now} is the latest approved")

    return app
