"""Checks shared by the public functions, raising :class:`~mlboot.exceptions.InvalidInputError`.

One rule per kind of value, used by every public function, class and ``mlboot`` option that
takes one: path-like text (:func:`path_text`, made absolute by :func:`absolute_path`), bools
that are really bools (:func:`check_bool`), ints that are not bools (:func:`check_int`), names
under a rule (:func:`check_name`), and durations (:func:`positive_seconds`).  Each raises
``InvalidInputError`` naming the field, the value, the rule and the fix, so that no bad value
goes on to fail as a raw ``ValueError``, ``TypeError`` or ``OSError`` deeper down.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from pathlib import Path

from mlboot._spellings import name_pattern
from mlboot.exceptions import InvalidInputError

__all__ = [
    "COMPUTE_NAME",
    "COMPUTE_NAME_RULE",
    "MAX_FILE_NAME_BYTES",
    "MAX_PATH_BYTES",
    "absolute_path",
    "check_bool",
    "check_int",
    "check_name",
    "path_text",
    "positive_seconds",
    "probe",
]

# Any compute's name, existing or new: never spaces, control characters, non-ASCII or URL syntax
# ('/', '?', '#' and '%' would change the address a lookup asks for), and never longer than the
# 24 characters the longest of Azure ML's naming rules allows (clusters and instances: 3 to 24;
# attached computes and clusters of SDK v1: 2 to 16).  '_' and '.' are tolerated so that an
# existing compute stays reachable whatever its kind; a new cluster's stricter rule is applied
# only before creating it (mlboot._compute).
COMPUTE_NAME = re.compile(name_pattern(24), re.ASCII)
COMPUTE_NAME_RULE = (
    "a compute name is 1 to 24 ASCII letters, digits, '-', '_' and '.', starting with a letter "
    "or digit (Azure ML allows no longer name for any kind of compute)"
)

MAX_FILE_NAME_BYTES = 255
"""The longest file or folder name (one path component) Linux and macOS file systems take."""
MAX_PATH_BYTES = 4095
"""The longest path the kernel takes in one call (``PATH_MAX`` less the final NUL)."""


def path_text(field: str, value: object, *, fix: str, what: str = "path") -> str:
    """``value`` (a ``str`` or ``os.PathLike`` of ``str``) as text the file system can take.

    Refused: other types (``bytes`` paths included), the empty string, NUL characters (which
    no file name can hold: the system call would fail with ``embedded null byte``), text that
    cannot be encoded for the file system (lone surrogates), a component over
    :data:`MAX_FILE_NAME_BYTES` bytes and a path over :data:`MAX_PATH_BYTES` bytes.
    """
    try:
        text = os.fspath(value)  # type: ignore[call-overload]  # checked at run time
    except TypeError:
        text = None
    except Exception as exc:
        raise InvalidInputError(
            field,
            value,
            f"its __fspath__() raised {type(exc).__name__}: {exc}",
            fix,
        ) from exc
    if not isinstance(text, str):
        rule = f"it must be a {what} given as a str or pathlib.Path"
        if isinstance(text, bytes):
            rule += ", not bytes"
        raise InvalidInputError(field, value, rule, fix)
    text = str.__str__(text)  # a str subclass's own __str__ or methods never change the path
    if not text:
        raise InvalidInputError(field, value, f"it must be a non-empty {what}", fix)
    if "\x00" in text:
        raise InvalidInputError(
            field, value, f"a {what} cannot contain a NUL character ('\\x00')", fix
        )
    try:
        encoded = os.fsencode(text)
    except UnicodeError:
        raise InvalidInputError(
            field,
            value,
            f"a {what} must be text the file system can encode (it holds a lone surrogate)",
            fix,
        ) from None
    longest = max(len(part) for part in encoded.split(os.fsencode(os.sep)))
    if longest > MAX_FILE_NAME_BYTES or len(encoded) > MAX_PATH_BYTES:
        raise InvalidInputError(
            field,
            value,
            f"a {what} must have no part over {MAX_FILE_NAME_BYTES} bytes and be at most "
            f"{MAX_PATH_BYTES} bytes in all (the file system's limits)",
            fix,
        )
    return text


def absolute_path(
    field: str, value: object, *, what: str, fix: str, expand_user: bool = False
) -> tuple[str, Path]:
    """``value`` checked by :func:`path_text`, and as an absolute path, the way azureml-core
    makes one: :func:`os.path.abspath` folds ``..`` and keeps links (``resolve()`` would follow
    them).  ``expand_user`` first expands a leading ``~``.  Returns ``(text, path)``: the text as
    given, for messages, and the absolute path.
    """
    text = path_text(field, value, what=what, fix=fix)
    return text, Path(os.path.abspath(os.path.expanduser(text) if expand_user else text))  # noqa: PTH100, PTH111


def probe(path: Path) -> tuple[bool, bool, bool]:
    """``(exists, is_file, is_dir)`` for ``path``, following links.

    All three are ``False`` for a path the system refuses (e.g. one that :func:`path_text`
    accepted but that is too long once made absolute): nothing can be there.
    """
    try:
        return path.exists(), path.is_file(), path.is_dir()
    except OSError:
        return False, False, False


def check_bool(field: str, value: object, *, fix: str) -> bool:
    """``value`` if it is ``True`` or ``False``; ``"yes"``, ``1`` or ``None`` are refused.

    A truthy stand-in is a mistake that would otherwise be read silently as ``True``.
    """
    if not isinstance(value, bool):
        raise InvalidInputError(field, value, "it must be True or False (a bool)", fix)
    return value


def check_int(field: str, value: object, *, fix: str, minimum: int | None = None) -> int:
    """``value`` if it is an ``int`` (not a ``bool``) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(field, value, "it must be an int (not a bool)", fix)
    if minimum is not None and value < minimum:
        raise InvalidInputError(field, value, f"it must be at least {minimum}", fix)
    return int(value)


def check_name(field: str, value: object, pattern: re.Pattern[str], *, rule: str, fix: str) -> str:
    """``value`` if it is a ``str`` that ``pattern`` matches whole (``fullmatch``)."""
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise InvalidInputError(field, value, rule, fix)
    return value


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
    try:
        finite = isinstance(seconds, int | float) and math.isfinite(seconds)
    except OverflowError:  # an int too large for a float
        finite = False
    if isinstance(seconds, bool) or not finite or seconds <= 0:  # type: ignore[operator]
        kinds = "seconds (or a timedelta)" if allow_timedelta else "seconds"
        rule = f"it must be a finite number of {kinds} greater than 0"
        raise InvalidInputError(field, value, rule + (", or None" if or_none else ""), fix)
    return float(seconds)  # type: ignore[arg-type]
