"""A closed set of string values, typed: the base of job kinds and job and endpoint states.

Imports nothing (DAG files import the operators, which import the kinds at parse time).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self


class Vocabulary(StrEnum):
    """A closed set of string values that parses with an error naming what is known."""

    #: How an unknown value is described in the error ("job status", ...).
    __noun__ = "value"

    @classmethod
    def parse(cls, value: str) -> Self:
        """Return the member for ``value``, raising a clear error on an unknown one."""
        try:
            return cls(value)
        except ValueError:
            known = ", ".join(m.value for m in cls)
            raise ValueError(f"Unknown {cls.__noun__} {value!r}; expected one of {known}") from None
