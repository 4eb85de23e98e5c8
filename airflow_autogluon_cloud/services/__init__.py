"""One module per concern of the AutoGluon cloud lifecycle, beneath the hook.

Each service takes what it needs (a backend, the storage locator, the provider settings, a
logger, sibling services), never the hook: the hook only builds them and delegates to them.
"""

from __future__ import annotations

from typing import Any, Protocol


class TaskLog(Protocol):
    """Where a service reports progress: the hook's logger, so lines land in the task log."""

    def debug(self, msg: str, /, *args: Any) -> Any: ...

    def info(self, msg: str, /, *args: Any) -> Any: ...

    def warning(self, msg: str, /, *args: Any) -> Any: ...

    def error(self, msg: str, /, *args: Any) -> Any: ...
