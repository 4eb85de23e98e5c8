"""Who may see and change the page, through Airflow's auth manager as the core API asks it.

FastAPI plugin routes are not protected by Airflow by default: every route here depends on
:func:`viewer`, which authenticates the request with the core API's own ``get_user`` (the JWT in
the ``Authorization`` header or in the UI's cookie) and asks the auth manager whether the user
may read DAGs. Changing the registry needs permission to edit DAGs (:func:`editor`).

A form POST authenticated by the cookie also needs a token only this page could have written
(an HMAC of the user's own cookie: a cross-site form cannot read it) and, when the browser sends
one, an ``Origin`` on this host.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Any
from urllib.parse import urlsplit

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
from airflow.api_fastapi.core_api.security import get_user
from fastapi import Depends, HTTPException, Request, status


def can_edit(user: Any) -> bool:
    return bool(get_auth_manager().is_authorized_dag(method="PUT", user=user))


async def viewer(user: Annotated[Any, Depends(get_user)]) -> Any:
    """The authenticated user, if the auth manager lets them read DAGs (else 403)."""
    if not get_auth_manager().is_authorized_dag(method="GET", user=user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden: reading DAGs is required")
    return user


async def editor(user: Annotated[Any, Depends(viewer)]) -> Any:
    """The authenticated user, if the auth manager lets them edit DAGs (else 403)."""
    if not can_edit(user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden: editing DAGs is required to change the registry")
    return user


#: Route parameters: the user who may read, or edit, as checked above.
Viewer = Annotated[Any, Depends(viewer)]
Editor = Annotated[Any, Depends(editor)]


def csrf_token(request: Request) -> str:
    """The form token for this browser session ('' when the request came with a bearer token)."""
    cookie = request.cookies.get(COOKIE_NAME_JWT_TOKEN) or ""
    if not cookie:
        return ""
    return hmac.new(cookie.encode(), b"airflow-autogluon-cloud-ui", hashlib.sha256).hexdigest()


def check_form_origin(request: Request, form: dict[str, str]) -> None:
    """Refuse a cookie-authenticated POST from another site: Origin must be this host, token must match."""
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return  # an explicit credential: a browser never attaches it cross-site
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden: cross-origin form")
    expected = csrf_token(request)
    if not expected or not hmac.compare_digest(expected, form.get("csrf_token", "")):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden: missing or wrong form token")
