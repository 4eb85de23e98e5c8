"""The Airflow plugin the provider registers (``plugins`` in get_provider_info).

Airflow imports this module in every component that loads plugins, so it stays light: the
FastAPI app is built by :mod:`.app` on the API server's first request to ``/autogluon``.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_autogluon_cloud.ui import URL_PREFIX


class LazyUiApp:
    """An ASGI app that builds the real one on its first call (FastAPI and jinja2 load only then)."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            from airflow_autogluon_cloud.ui.app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


class AutoGluonCloudPlugin(AirflowPlugin):
    """The "AutoGluon" page: the registry, evaluations, endpoints and jobs, in Airflow's navigation."""

    name = "autogluon_cloud"
    fastapi_apps = [{"app": LazyUiApp(), "url_prefix": URL_PREFIX, "name": "AutoGluon"}]
    external_views = [
        {
            "name": "AutoGluon",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "url_route": "autogluon",
        }
    ]
