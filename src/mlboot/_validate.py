"""Checks shared by the public functions, raising :class:`~mlboot.exceptions.InvalidInputError`."""

from __future__ import annotations

import datetime as dt
import math
import re

from mlboot.exceptions import InvalidInputError

__all__ = ["COMPUTE_NAME", "COMPUTE_NAME_RULE", "positive_seconds"]

# Any compute's name, existing or new: never spaces, control characters, non-ASCII or URL syntax
# ('/', '?', '#' and '%' would change the address a lookup asks for).
COMPUTE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}", re.ASCII)
COMPUTE_NAME_RULE = (
    "a compute name is 1 to 255 ASCII letters, digits, '-', '_' and '.', starting with a letter "
    "or digit"
)


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
