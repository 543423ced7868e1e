"""Checks shared by the public functions, raising :class:`~mlboot.exceptions.InvalidInputError`."""

from __future__ import annotations

import datetime as dt
import math

from mlboot.exceptions import InvalidInputError

__all__ = ["positive_seconds"]


def positive_seconds(
    field: str, value: object, *, fix: str, allow_timedelta: bool = True, or_none: bool = False
) -> float:
    """``value`` as a finite number of seconds greater than 0 (a ``timedelta`` counts too).

    ``bool`` is refused although it is an ``int``: ``timeout=True`` is a mistake, not one second.
    ``or_none`` only changes the rule's wording; callers handle ``None`` themselves.
    """
    seconds = (
        value.total_seconds() if allow_timedelta and isinstance(value, dt.timedelta) else value
    )
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not math.isfinite(seconds)
        or seconds <= 0
    ):
        kinds = "seconds (or a timedelta)" if allow_timedelta else "seconds"
        rule = f"it must be a finite number of {kinds} greater than 0"
        raise InvalidInputError(field, value, rule + (", or None" if or_none else ""), fix)
    return float(seconds)
